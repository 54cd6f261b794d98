"""The baseline: a hand-written aiohttp client making the same HTTP calls as the SDK would.

It is what a careful user writes without the SDK: one pooled ``ClientSession``, a semaphore for
jobs in flight, fixed-interval polling, blocking file writes on the event loop, and a retry after
``Retry-After`` on 429. No validation, no typed models, no atomic files, no adaptive rate limiting.

    python benchmarks/raw_client.py {overhead,polling,downloads,ratelimit} BASE_URL [options]
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from common import KEY, PROMPT, SEED, Options, Stopwatch, emit, parse_options

HEADERS = {"Authorization": f"Bearer {KEY}"}
_CHUNK = 256 * 1024


def _body(o: Options, **fields: Any) -> dict[str, Any]:
    """The request fields; sent with ``json=``, so encoded per request, as real prompts vary."""
    size = {"width": o.size, "height": o.size}
    return {"prompt": PROMPT, "image_size": size, "seed": SEED, **fields}


def _client(connections: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections))


async def _timed(jobs: int, one: Callable[[int], Awaitable[None]]) -> Stopwatch:
    watch = Stopwatch()
    await asyncio.gather(*(one(n) for n in range(jobs)))
    return watch.stop()


async def overhead(o: Options) -> None:
    """``sync_mode`` jobs, then a GET of the image into memory; ``inflight`` jobs at a time."""
    body, generate = _body(o, sync_mode=True), f"{o.base_url}/images/generate"
    gate = asyncio.Semaphore(o.inflight)
    counts: Counter[str] = Counter()
    async with _client(o.inflight) as http:

        async def one(_: int) -> None:
            async with gate:
                async with http.post(generate, json=body, headers=HEADERS) as r:
                    job = await r.json()
                async with http.get(job["images"][0]["url"]) as r:
                    data = await r.read()
                counts["image_bytes"] += len(data)
                counts["completed"] += 1

        timed = await _timed(o.jobs, one)
    emit(timed, counts)


async def polling(o: Options) -> None:
    """Async jobs polled every ``interval`` seconds until done; 64 connections, like the SDK."""
    body = _body(o)
    gate = asyncio.Semaphore(o.inflight)
    counts: Counter[str] = Counter()
    async with _client(64) as http:

        async def one(_: int) -> None:
            async with gate:
                try:
                    async with http.post(
                        f"{o.base_url}/images/generate", json=body, headers=HEADERS
                    ) as r:
                        job = await r.json()
                    while job["status"] == "PROCESSING":
                        await asyncio.sleep(o.interval)
                        counts["status_calls"] += 1
                        async with http.get(
                            f"{o.base_url}/images/status",
                            params={"request_id": job["request_id"]},
                            headers=HEADERS,
                        ) as r:
                            if r.status != 200:
                                counts[f"http_{r.status}"] += 1
                                continue
                            job = await r.json()
                    counts[job["status"].lower()] += 1
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    counts[type(exc).__name__] += 1

        timed = await _timed(o.jobs, one)
    emit(timed, counts)


async def downloads(o: Options) -> None:
    """``sync_mode`` jobs of ``num_images``; each image streamed to its own file."""
    body = _body(o, sync_mode=True, num_images=o.num_images)
    generate = f"{o.base_url}/images/generate"
    jobs_gate, downloads_gate = asyncio.Semaphore(o.inflight), asyncio.Semaphore(o.downloads)
    counts: Counter[str] = Counter()
    out = tempfile.mkdtemp(prefix="raw-dl-", dir=o.out_dir)
    async with _client(64 + o.downloads) as http:

        async def fetch(url: str, path: str) -> None:
            async with downloads_gate, http.get(url) as r:
                r.raise_for_status()
                with open(path, "wb") as f:
                    async for chunk in r.content.iter_chunked(_CHUNK):
                        f.write(chunk)
                        counts["bytes_written"] += len(chunk)
            counts["files"] += 1

        async def one(_: int) -> None:
            async with jobs_gate:
                async with http.post(generate, json=body, headers=HEADERS) as r:
                    job = await r.json()
                rid = job["request_id"]
                await asyncio.gather(
                    *(
                        fetch(image["url"], os.path.join(out, f"{rid}_{index}.png"))
                        for index, image in enumerate(job["images"])
                    )
                )
                counts["completed"] += 1

        try:
            timed = await _timed(o.jobs, one)
        finally:
            shutil.rmtree(out)
    emit(timed, counts)


async def ratelimit(o: Options) -> None:
    """``sync_mode`` jobs; a 429 is retried after its ``Retry-After`` seconds, nothing more."""
    body = _body(o, sync_mode=True)
    gate = asyncio.Semaphore(o.inflight)
    counts: Counter[str] = Counter()
    async with _client(o.inflight) as http:

        async def one(_: int) -> None:
            async with gate:
                while True:
                    counts["requests"] += 1
                    async with http.post(
                        f"{o.base_url}/images/generate", json=body, headers=HEADERS
                    ) as r:
                        await r.read()
                        if r.status != 429:
                            counts["completed" if r.status == 200 else f"http_{r.status}"] += 1
                            return
                        counts["http_429"] += 1
                        wait = float(r.headers.get("Retry-After", "1"))
                    await asyncio.sleep(wait)

        timed = await _timed(o.jobs, one)
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
