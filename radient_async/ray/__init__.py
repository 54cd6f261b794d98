"""Radient on Ray Data: many processes and machines, no duplicate jobs, resumable runs.

``pip install 'radient-async[ray]'``. ``RadientMapper`` is the callable class for
``Dataset.map_batches`` (one session per actor, per-row results, keys derived from the run and the
row); ``generate`` runs a whole Parquet-in, Parquet-and-images-out pipeline with Ray Data's
checkpointing; ``RateBudget`` splits a global submit budget over a pool. See ``docs/scale-out.md``.

    import ray, radient_async.ray as rr
    ray.init()
    summary = rr.generate("prompts.parquet", output="out/", id_column="id", actors=8)
"""

from __future__ import annotations

try:
    import fsspec  # noqa: F401
    import pyarrow  # noqa: F401
    import ray.data  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "radient_async.ray needs Ray Data, pyarrow and fsspec: pip install 'radient-async[ray]'"
    ) from exc

from radient_async.ray._budget import RateBudget
from radient_async.ray._mapper import RadientMapper
from radient_async.ray._pipeline import RunSummary, generate
from radient_async.ray._rows import OUTPUT_COLUMNS, ImageMode

__all__ = ["OUTPUT_COLUMNS", "ImageMode", "RadientMapper", "RateBudget", "RunSummary", "generate"]
