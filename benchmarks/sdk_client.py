"""The same scenarios as ``raw_client.py``, through radient_async with its default policies.

``overhead`` uses ``asyncio.gather`` over ``session.generate`` + ``image.read()`` (a read per job
does not fit ``session.map``); the other scenarios use ``session.map``. Only ``Limits`` are set.

    python benchmarks/sdk_client.py {overhead,polling,downloads,ratelimit} BASE_URL [options]
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from common import KEY, PROMPT, SEED, Options, Stopwatch, emit, parse_options

import radient_async as ra


def _session(o: Options, **limits: int) -> ra.Session:
    return ra.Session(KEY, o.base_url, limits=ra.Limits(**limits))


async def _map(s: ra.Session, o: Options, counts: Counter[str], **fields: Any) -> Stopwatch:
    """Run ``o.jobs`` prompts through ``session.map``; tally outcomes; time it."""
    size = (o.size, o.size)
    watch = Stopwatch()
    outcomes: AsyncIterator[ra.BatchOutcome] = s.map(
        (PROMPT for _ in range(o.jobs)), seed=SEED, image_size=size, **fields
    )
    async for outcome in outcomes:
        if outcome.error is None:
            counts["completed"] += 1
            counts["files"] += len(outcome.paths)
        else:
            counts[type(outcome.error).__name__] += 1
    return watch.stop()


async def overhead(o: Options) -> None:
    """``sync_mode`` jobs plus ``image.read()``; ``inflight`` jobs at a time, as in the raw one."""
    gate = asyncio.Semaphore(o.inflight)
    counts: Counter[str] = Counter()
    limit = o.inflight
    async with _session(o, requests=limit, jobs=limit, downloads=limit) as s:

        async def one() -> None:
            async with gate:
                try:
                    result = await s.generate(
                        PROMPT, seed=SEED, sync_mode=True, image_size=(o.size, o.size)
                    )
                    data = await result.images[0].read()
                except ra.RadientError as exc:
                    counts[type(exc).__name__] += 1
                    return
                counts["image_bytes"] += len(data)
                counts["completed"] += 1

        watch = Stopwatch()
        await asyncio.gather(*(one() for _ in range(o.jobs)))
        timed = watch.stop()
    emit(timed, counts)


async def polling(o: Options) -> None:
    """Async jobs through ``session.map``, polled by the SDK's own schedule."""
    counts: Counter[str] = Counter()
    async with _session(o, jobs=o.inflight) as s:
        timed = await _map(s, o, counts)
    emit(timed, counts)


async def downloads(o: Options) -> None:
    """``sync_mode`` jobs of ``num_images`` saved with ``session.map(download_to=...)``."""
    counts: Counter[str] = Counter()
    out = tempfile.mkdtemp(prefix="sdk-dl-", dir=o.out_dir)
    try:
        async with _session(o, jobs=o.inflight, downloads=o.downloads) as s:
            timed = await _map(
                s, o, counts, sync_mode=True, num_images=o.num_images, download_to=out
            )
        counts["bytes_written"] = sum(entry.stat().st_size for entry in os.scandir(out))
    finally:
        shutil.rmtree(out)
    emit(timed, counts)


async def ratelimit(o: Options) -> None:
    """``sync_mode`` jobs through ``session.map``; 429s handled by the SDK (retries, AIMD)."""
    counts: Counter[str] = Counter()
    async with _session(o, requests=o.inflight, jobs=o.inflight) as s:
        timed = await _map(s, o, counts, sync_mode=True)
    emit(timed, counts)


RUNS: dict[str, Callable[[Options], Awaitable[None]]] = {
    "overhead": overhead,
    "polling": polling,
    "downloads": downloads,
    "ratelimit": ratelimit,
}

if __name__ == "__main__":
    options = parse_options()
    asyncio.run(RUNS[options.scenario](options))
