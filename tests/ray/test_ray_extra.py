"""radient_async.ray on a local Ray cluster against the local server (in a thread, over loopback).

Every test counts what the server did (``jobs_created``), never how long anything took. The cluster
(2 CPUs) and the server start once for the module; each test resets the server's counters.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

import radient_async  # noqa: E402
import radient_async.ray as rr  # noqa: E402
from radient_async.server import ServerConfig, ThreadedServer  # noqa: E402

pytestmark = [
    pytest.mark.ray,
    pytest.mark.timeout(300),
    # Ray's own modules only: a DeprecationWarning of ours still fails the run.
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*"),
]

KEY = "ray-test-key"
DRIVER = Path(__file__).with_name("resume_driver.py")
MAPPER_TITLE = b"MapBatches(RadientMapper)"


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A local Ray cluster for the module; its address lets another driver join it."""
    context = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield context.address_info["address"]
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedServer]:
    """The local server in a thread, reachable from the actors' processes over loopback."""
    with ThreadedServer(ServerConfig(api_key=KEY, latency=0.3, poll_hint=True)) as running:
        yield running


@pytest.fixture
def fresh_server(server: ThreadedServer) -> ThreadedServer:
    """The server with every counter and control back at zero (rate limit off)."""
    server.controls.set_rate_limit(None)
    server.controls.reset_stats()
    return server


def write_prompts(folder: Path, rows: int) -> str:
    path = folder / "prompts.parquet"
    table = pa.table(
        {"id": list(range(rows)), "prompt": [f"a lighthouse, take {i}" for i in range(rows)]}
    )
    pq.write_table(table, path)
    return str(path)


def run_settings(server: ThreadedServer, source: str, output: Path, **extra: Any) -> dict[str, Any]:
    """The generate() arguments a test and its resume share (a resumed run must match)."""
    return {
        "source": source,
        "output": str(output),
        "base_url": server.base_url,
        "api_key": KEY,
        "block_rows": 20,
        "defaults": {"image_size": "square"},
        **extra,
    }


def run(settings: dict[str, Any], **extra: Any) -> rr.RunSummary:
    arguments = dict(settings)
    return rr.generate(arguments.pop("source"), id_column="id", actors=2, **arguments, **extra)


def results_of(output: Path) -> list[dict[str, Any]]:
    return pq.read_table(output / "results").to_pylist()


def assert_every_row_once(output: Path, rows: int) -> list[dict[str, Any]]:
    results = results_of(output)
    counts = collections.Counter(row["id"] for row in results)
    assert sorted(counts) == list(range(rows))
    assert set(counts.values()) == {1}
    return results


def mapper_pids() -> list[int]:
    """Processes whose title names our mapper (Ray titles actor processes by their class)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path("/proc", entry, "cmdline").read_bytes()
            except OSError:
                continue
            if MAPPER_TITLE in cmdline:
                pids.append(int(entry))
    return pids


def committed_blocks(output: Path) -> int:
    """Blocks whose rows Ray Data's checkpoint has committed (pending ones do not count)."""
    folder = output / "_checkpoint"
    names = [path.name for path in folder.glob("*.parquet")] if folder.is_dir() else []
    return sum(not name.endswith(".pending.parquet") for name in names)


def wait_for(condition: Any, what: str, limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


# -- the mapper alone, on this test's event loop (no cluster) -------------------------------------


@pytest.mark.anyio
async def test_the_mapper_returns_one_row_per_row_and_raises_for_none(
    radient_server: ThreadedServer,
) -> None:
    mapper = rr.RadientMapper(
        run_id="run-1",
        id_column="id",
        api_key=radient_server.api_key,
        base_url=radient_server.base_url,
        defaults={"image_size": "square"},
    )
    batch = pa.table({"id": [0, 1, None, 3], "prompt": ["a fox", "[fail] a fox", "a fox", ""]})
    try:
        first = (await mapper(batch)).to_pylist()
        again = (await mapper(batch)).to_pylist()  # the same rows of the same run: same jobs
    finally:
        await mapper.aclose()
    assert [row["status"] for row in first] == ["COMPLETED", "FAILED", "ERROR", "ERROR"]
    assert [row["error_type"] for row in first] == [
        None,
        "JobFailed",
        "ValidationError",
        "ValidationError",
    ]
    assert [row["id"] for row in first] == [0, 1, None, 3]
    assert first[0]["images"][0].startswith("http")
    assert first[1]["request_id"] is not None
    assert [row["request_id"] for row in again] == [row["request_id"] for row in first]
    assert radient_server.stats.jobs_created == 2


@pytest.mark.anyio
async def test_a_batch_the_settings_cannot_read_is_refused(radient_server: ThreadedServer) -> None:
    mapper = rr.RadientMapper(run_id="run-1", id_column="sku", api_key="unused")
    with pytest.raises(radient_async.ConfigurationError, match="no column 'sku'"):
        await mapper(pa.table({"id": [1], "prompt": ["a fox"]}))
    assert radient_server.stats.requests["generate"] == 0


@pytest.mark.anyio
async def test_images_go_to_object_storage_through_fsspec_atomically(
    radient_server: ThreadedServer,
) -> None:
    """A non-local ``image_dir`` (fsspec's in-memory store standing in for s3://, gs://)."""
    import fsspec

    store = fsspec.filesystem("memory")
    mapper = rr.RadientMapper(
        run_id="run-fsspec",
        id_column="id",
        api_key=radient_server.api_key,
        base_url=radient_server.base_url,
        defaults={"image_size": "square", "num_images": 2},
        images="path",
        image_dir="memory://bucket/images",
    )
    try:
        rows = (await mapper(pa.table({"id": [7, 8], "prompt": ["a fox", "an owl"]}))).to_pylist()
    finally:
        await mapper.aclose()
    assert [row["status"] for row in rows] == ["COMPLETED", "COMPLETED"]
    saved = [path for row in rows for path in row["images"]]
    assert len(saved) == 4
    assert all(path.startswith("memory://") and store.exists(path) for path in saved)
    names = store.find("/bucket/images")
    assert len(names) == 4  # no temporary file left beside them
    assert all(store.cat_file(name)[:8] == b"\x89PNG\r\n\x1a\n" for name in names)


def test_the_budget_is_split_evenly_over_the_pool() -> None:
    assert rr.RateBudget(requests_per_second=120, actors=4).per_actor == 30
    with pytest.raises(radient_async.ConfigurationError):
        rr.RateBudget(requests_per_second=0, actors=4)


# -- one whole run, shared by the tests that look at a finished output ----------------------------


@pytest.fixture(scope="module")
def finished(
    cluster: str, server: ThreadedServer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], rr.RunSummary, int]:
    folder = tmp_path_factory.mktemp("finished")
    settings = run_settings(server, write_prompts(folder, 100), folder / "out")
    server.controls.reset_stats()
    summary = run(settings)
    return settings, summary, server.stats.jobs_created


def test_every_row_once_with_its_files(
    finished: tuple[dict[str, Any], rr.RunSummary, int],
) -> None:
    settings, summary, jobs_created = finished
    output = Path(settings["output"])
    results = assert_every_row_once(output, 100)
    assert jobs_created == 100
    assert (summary.rows, summary.completed, summary.failed, summary.skipped) == (100, 100, 0, 0)
    assert {row["status"] for row in results} == {"COMPLETED"}
    assert all(len(row["images"]) == 1 and Path(row["images"][0]).is_file() for row in results)
    assert len({row["idempotency_key"] for row in results}) == 100
    record = json.loads((output / "run.json").read_text())
    assert record["run_id"] == summary.run_id
    assert record["finished"] is True


def test_rerunning_a_finished_output_creates_no_job(
    finished: tuple[dict[str, Any], rr.RunSummary, int], fresh_server: ThreadedServer
) -> None:
    settings, summary, _ = finished
    again = run(settings)
    assert fresh_server.stats.jobs_created == 0
    assert fresh_server.stats.requests["generate"] == 0
    assert (again.run_id, again.rows, again.skipped) == (summary.run_id, 100, 100)


@pytest.mark.parametrize(
    "change",
    [{"defaults": {"image_size": "square", "num_images": 2}}, {"images": "url"}],
    ids=["defaults", "image-mode"],
)
def test_a_resume_with_other_settings_is_refused(
    finished: tuple[dict[str, Any], rr.RunSummary, int],
    fresh_server: ThreadedServer,
    change: dict[str, Any],
) -> None:
    settings, _, _ = finished
    with pytest.raises(radient_async.ConfigurationError, match="other settings"):
        run({**settings, **change})
    assert fresh_server.stats.jobs_created == 0


def test_a_resume_over_another_input_is_refused(
    finished: tuple[dict[str, Any], rr.RunSummary, int],
    fresh_server: ThreadedServer,
    tmp_path: Path,
) -> None:
    settings, _, _ = finished
    other = write_prompts(tmp_path, 101)
    with pytest.raises(radient_async.ConfigurationError, match="another input"):
        run({**settings, "source": other})
    assert fresh_server.stats.jobs_created == 0


# -- failures mid-run -----------------------------------------------------------------------------


def test_a_killed_actor_creates_no_duplicate_job(
    cluster: str, fresh_server: ThreadedServer, tmp_path: Path
) -> None:
    rows = 200
    settings = run_settings(fresh_server, write_prompts(tmp_path, rows), tmp_path / "out")
    outcome: list[rr.RunSummary | BaseException] = []

    def drive() -> None:
        try:
            outcome.append(run(settings))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=drive)
    thread.start()
    try:
        wait_for(lambda: fresh_server.stats.jobs_created >= 40 and mapper_pids(), "jobs to start")
        victim = mapper_pids()[0]
        os.kill(victim, signal.SIGKILL)
    finally:
        thread.join(240)
    assert len(outcome) == 1
    assert isinstance(outcome[0], rr.RunSummary), outcome
    assert victim not in mapper_pids()
    results = assert_every_row_once(tmp_path / "out", rows)
    assert fresh_server.stats.jobs_created == rows
    assert {row["status"] for row in results} == {"COMPLETED"}
    # Ray re-ran the killed actor's block: its rows came back to the server with the same keys.
    assert fresh_server.stats.idempotent_replays > 0


def test_a_run_stopped_midway_resumes_without_duplicates(
    cluster: str, fresh_server: ThreadedServer, tmp_path: Path
) -> None:
    rows = 200
    output = tmp_path / "out"
    settings = run_settings(fresh_server, write_prompts(tmp_path, rows), output)
    driver = subprocess.Popen(
        [sys.executable, str(DRIVER), json.dumps({"address": cluster, **settings})],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: committed_blocks(output) > 0, "a first committed block")
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait(30)
    assert json.loads((output / "run.json").read_text())["finished"] is False
    summary = run(settings)
    results = assert_every_row_once(output, rows)
    assert 0 < summary.skipped < rows
    assert {row["status"] for row in results} == {"COMPLETED"}
    assert fresh_server.stats.jobs_created == rows


# -- the global budget ----------------------------------------------------------------------------


def test_four_actors_under_a_server_rate_limit_fail_no_row(
    cluster: str, fresh_server: ThreadedServer, tmp_path: Path
) -> None:
    # 30 requests/s at the server; a budget of 24 requests/s for the pool (6 per actor, submits
    # and polls alike, as each session's ceiling) stays under it: no 429 at all.
    rows = 80
    fresh_server.controls.set_rate_limit(30.0)
    settings = run_settings(fresh_server, write_prompts(tmp_path, rows), tmp_path / "out")
    arguments = dict(settings)
    summary = rr.generate(
        arguments.pop("source"), id_column="id", actors=4, requests_per_second=24.0, **arguments
    )
    assert (summary.rows, summary.failed, summary.rate_limited) == (rows, 0, 0)
    assert_every_row_once(tmp_path / "out", rows)
    assert fresh_server.stats.jobs_created == rows
    assert fresh_server.stats.rate_limited == 0
