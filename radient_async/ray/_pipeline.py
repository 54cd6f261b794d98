"""``generate``: a whole read → generate → write run on Ray Data, resumable, never paying twice.

The pipeline is ``read_parquet → repartition(block_rows) → map_batches(RadientMapper) →
write_parquet`` with Ray Data's checkpointing on the id column (``ray.data.checkpoint``): each
written block commits its row ids in two phases, and a resumed run skips the committed rows at
read time and deletes files a killed run left uncommitted. ``block_rows`` bounds what one block
holds, and so what a crash can cost and how often progress is committed. Rows that ran but were
not committed are run again with the same keys, so the server hands back the jobs it already made.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import attrs
import pyarrow.compute as pc
import pyarrow.parquet as pq
import ray.data
from ray.data.checkpoint import CheckpointConfig

from radient_async import ConfigurationError, Limits, PollPolicy, RetryPolicy, Timeouts
from radient_async.ray._budget import RateBudget
from radient_async.ray._mapper import RadientMapper
from radient_async.ray._record import RunRecord, fingerprint, mark_finished, open_run
from radient_async.ray._rows import IMAGE_MODES, ImageMode, RowSpec
from radient_async.ray._storage import Target, open_target

__all__ = ["RunSummary", "generate"]

RESULTS = "results"
IMAGES = "images"
CHECKPOINT = "_checkpoint"
Source: TypeAlias = "str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | ray.data.Dataset"


@attrs.frozen(kw_only=True)
class RunSummary:
    """What an output folder holds after ``generate``: one result row per input row.

    ``rows``/``completed``/``failed`` count result rows (``failed``: FAILED or ERROR);
    ``submitted`` rows that got a job; ``rate_limited`` rows that ended on a 429
    (``RateLimitError``); ``skipped`` rows already done before this call (a resumed or finished
    run); ``results`` the Parquet folder, ``images`` the image folder (``images="path"``).
    """

    run_id: str
    rows: int
    completed: int
    failed: int
    submitted: int
    rate_limited: int
    skipped: int
    results: str
    images: str | None


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name} must be a positive integer, got {value!r}")
    return value


def _local_url(url: str | os.PathLike[str]) -> str:
    """Local paths made absolute (actors run in other working directories); URLs as they are."""
    text = os.fspath(url)
    return text if "://" in text else os.path.abspath(text)


def _input_of(
    source: Source, storage_options: Mapping[str, Any] | None
) -> tuple[str, str, list[str] | None]:
    """A description of the input, its fingerprint, and the Parquet paths to read (if paths)."""
    if isinstance(source, ray.data.Dataset):
        schema = str(source.schema())
        return "<ray.data.Dataset>", fingerprint({"schema": schema}), None
    raw = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    if not raw:
        raise ConfigurationError("no input paths given")
    paths = [_local_url(path) for path in raw]
    listing: list[tuple[str, int]] = []
    for path in paths:
        target = open_target(path, storage_options)
        files = target.parquet_files() if target.fs.isdir(target.root) else [target.root]
        if not files:
            raise ConfigurationError(f"no Parquet files under {path}")
        listing.extend((name, target.fs.size(name)) for name in files)
    return ", ".join(paths), fingerprint(sorted(listing)), paths


def _summary(target: Target, record: RunRecord, skipped: int, images: str | None) -> RunSummary:
    """Counts read back from the result files themselves (what is committed is what counts)."""
    files = target.parquet_files(RESULTS)
    columns = ["status", "error_type", "request_id"]
    table = pq.read_table(files, columns=columns, filesystem=target.fs) if files else None
    rows = 0 if table is None else table.num_rows

    def count(mask: Any) -> int:
        return 0 if table is None else int(pc.sum(pc.cast(mask, "int64")).as_py() or 0)

    completed = count(pc.equal(table["status"], "COMPLETED")) if table else 0
    rate_limited = count(pc.equal(table["error_type"], "RateLimitError")) if table else 0
    submitted = count(pc.is_valid(table["request_id"])) if table else 0
    return RunSummary(
        run_id=record.run_id,
        rows=rows,
        completed=completed,
        failed=rows - completed,
        submitted=submitted,
        rate_limited=rate_limited,
        skipped=skipped,
        results=target.url_of(RESULTS),
        images=images,
    )


def generate(
    source: Source,
    *,
    output: str | os.PathLike[str],
    id_column: str,
    prompt_column: str = "prompt",
    columns: Sequence[str] = (),
    defaults: Mapping[str, Any] | None = None,
    images: ImageMode = "path",
    api_key: str | None = None,
    base_url: str | None = None,
    actors: int = 2,
    requests_per_second: float | None = None,
    block_rows: int = 256,
    limits: Limits | None = None,
    timeouts: Timeouts | None = None,
    retry: RetryPolicy | None = None,
    poll: PollPolicy | None = None,
    allow_insecure_http: bool = False,
    attempt: int = 0,
    storage_options: Mapping[str, Any] | None = None,
) -> RunSummary:
    """Generate one image job per input row and write the results; resumable, never twice.

    ``source`` is a Parquet file or folder (or a list of them; a path or any fsspec URL), or a
    ``ray.data.Dataset`` that starts with a ``ray.data.read_*`` (resume needs a read at the root).
    ``output`` (a path or fsspec URL) receives ``run.json``, ``results/*.parquet`` (each input
    row plus its result columns, see ``RadientMapper``), ``images/`` (``images="path"``) and
    ``_checkpoint/``. Run it again with the same output to resume: rows already written are
    skipped, the rest are sent with the same keys; different settings or a different input are
    refused with ``ConfigurationError``. ``actors`` is the pool size; ``requests_per_second`` the
    pool's global submit budget (split evenly, see ``RateBudget``). Blocks until the run ends;
    progress shows in Ray Data's own progress bars. Call ``ray.init(...)`` first to use a
    cluster; otherwise Ray starts a local one.
    """
    if images not in IMAGE_MODES:
        raise ConfigurationError(f"images must be one of {IMAGE_MODES}, got {images!r}")
    actors = _positive_int("actors", actors)
    block_rows = _positive_int("block_rows", block_rows)
    spec = RowSpec(
        id_column=id_column, prompt_column=prompt_column, columns=columns, defaults=defaults or {}
    )
    budget = (
        None
        if requests_per_second is None
        else RateBudget(requests_per_second=requests_per_second, actors=actors)
    )
    output_url = _local_url(output)
    target = open_target(output_url, storage_options)
    target.fs.makedirs(target.root, exist_ok=True)
    described, input_fingerprint, paths = _input_of(source, storage_options)
    settings = {
        **attrs.asdict(spec),
        "images": images,
        "attempt": attempt,
        "base_url": base_url or os.environ.get("RADIENT_BASE_URL"),
    }
    record = open_run(
        target, input=described, input_fingerprint=input_fingerprint, settings=settings
    )
    image_url = target.url_of(IMAGES) if images == "path" else None
    before = _summary(target, record, 0, image_url).rows
    if record.finished:
        return _summary(target, record, before, image_url)
    dataset = source if paths is None else ray.data.read_parquet(paths)
    assert isinstance(dataset, ray.data.Dataset)
    dataset = dataset.repartition(target_num_rows_per_block=block_rows).map_batches(
        RadientMapper,
        fn_constructor_kwargs={
            "run_id": record.run_id,
            "id_column": spec.id_column,
            "prompt_column": spec.prompt_column,
            "columns": spec.columns,
            "defaults": dict(spec.defaults),
            "images": images,
            "image_dir": image_url,
            "storage_options": dict(storage_options or {}),
            "api_key": api_key,
            "base_url": base_url,
            "limits": limits,
            "timeouts": timeouts,
            "retry": retry,
            "poll": poll,
            "allow_insecure_http": allow_insecure_http,
            "rate_budget": budget,
            "attempt": attempt,
        },
        batch_format="pyarrow",
        batch_size=block_rows,
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=0,  # network-bound; asking for CPUs can starve a small cluster's readers
    )
    # The checkpoint rides on this dataset's own context (a copy), not Ray's global one.
    dataset.context.checkpoint_config = CheckpointConfig(
        id_column=spec.id_column,
        checkpoint_path=target.url_of(CHECKPOINT),
        delete_checkpoint_on_success=False,
    )
    dataset.write_parquet(target.url_of(RESULTS))
    record = mark_finished(target, record)
    return _summary(target, record, before, image_url)
