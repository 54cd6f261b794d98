"""Benchmark clients: the raw-aiohttp baseline and radient_async doing the same HTTP work.

Run one scenario with one implementation against a running server, print one JSON line:

    python benchmarks/clients.py SCENARIO {raw,sdk} BASE_URL [--jobs N] [--inflight N] ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import tempfile
import time
from typing import Any

import aiohttp

import radient_async as ra

KEY = "bench-key"
HEADERS = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- raw aiohttp baseline ---------------------------------------------------------------------


async def raw_overhead(base: str, jobs: int, inflight: int, size: int) -> dict[str, Any]:
    body = json.dumps(
        {"prompt": "p", "seed": 1, "sync_mode": True, "image_size": {"width": size, "height": size}}
    )
    gate = asyncio.Semaphore(inflight)
    nbytes = 0
    connector = aiohttp.TCPConnector(limit=inflight * 2)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def one() -> None:
            nonlocal nbytes
            async with gate:
                async with http.post(f"{base}/images/generate", data=body, headers=HEADERS) as r:
                    job = await r.json()
                async with http.get(job["images"][0]["url"]) as r:
                    data = await r.read()
                nbytes += len(data)  # never `x += await ...`: x is read before the await

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(jobs)))
        wall = time.perf_counter() - started
    return {"wall": wall, "jobs_per_s": jobs / wall, "image_bytes": nbytes / jobs}


async def raw_polling(base: str, jobs: int, inflight: int, interval: float) -> dict[str, Any]:
    body = json.dumps({"prompt": "p", "seed": 1, "image_size": {"width": 32, "height": 32}})
    gate = asyncio.Semaphore(inflight)
    polls = errors = 0
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def one() -> None:
            nonlocal polls, errors
            async with gate:
                async with http.post(f"{base}/images/generate", data=body, headers=HEADERS) as r:
                    job = await r.json()
                while True:
                    await asyncio.sleep(interval)
                    polls += 1
                    async with http.get(
                        f"{base}/images/status",
                        headers=HEADERS,
                        params={"request_id": job["request_id"]},
                    ) as r:
                        if r.status != 200:
                            errors += 1
                            continue
                        if (await r.json())["status"] in ("COMPLETED", "FAILED"):
                            return

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(jobs)))
        wall = time.perf_counter() - started
    return {"wall": wall, "status_per_job": polls / jobs, "errors": errors, "rss_mb": rss_mb()}


async def raw_downloads(base: str, jobs: int, inflight: int) -> dict[str, Any]:
    body = json.dumps(
        {
            "prompt": "p",
            "seed": 1,
            "sync_mode": True,
            "num_images": 4,
            "image_size": {"width": 64, "height": 64},
        }
    )
    gate = asyncio.Semaphore(inflight)
    out = tempfile.mkdtemp(prefix="raw-dl-")
    written = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as http:

        async def one(n: int) -> None:
            nonlocal written
            async with gate:
                async with http.post(f"{base}/images/generate", data=body, headers=HEADERS) as r:
                    job = await r.json()
                for i, image in enumerate(job["images"]):
                    async with http.get(image["url"]) as r:
                        with open(os.path.join(out, f"{n}_{i}.png"), "wb") as f:
                            async for chunk in r.content.iter_chunked(256 * 1024):
                                f.write(chunk)
                                written += len(chunk)

        started = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(jobs)))
        wall = time.perf_counter() - started
    shutil.rmtree(out)
    return {"wall": wall, "mb_per_s": written / 1e6 / wall, "rss_mb": rss_mb()}


async def raw_ratelimit(base: str, jobs: int, inflight: int) -> dict[str, Any]:
    body = json.dumps(
        {"prompt": "p", "seed": 1, "sync_mode": True, "image_size": {"width": 32, "height": 32}}
    )
    gate = asyncio.Semaphore(inflight)
    sent = limited = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=inflight)) as http:

        async def one() -> None:
            nonlocal sent, limited
            async with gate:
                while True:
                    sent += 1
                    async with http.post(
                        f"{base}/images/generate", data=body, headers=HEADERS
                    ) as r:
                        if r.status != 429:
                            await r.read()
                            return
                        limited += 1
                        await asyncio.sleep(float(r.headers.get("Retry-After", "1")))

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(jobs)))
        wall = time.perf_counter() - started
    return {"wall": wall, "jobs_per_s": jobs / wall, "fraction_429": limited / sent}


# -- radient_async ------------------------------------------------------------------------------


def session(base: str, **limits: int) -> ra.Session:
    return ra.Session(
        KEY,
        base,
        limits=ra.Limits(**limits),
        poll=ra.PollPolicy(timeout=120),
        timeouts=ra.Timeouts(request=120),
    )


async def sdk_overhead(base: str, jobs: int, inflight: int, size: int) -> dict[str, Any]:
    nbytes = 0
    async with session(base, requests=inflight, jobs=inflight, downloads=inflight) as s:

        async def one() -> None:
            nonlocal nbytes
            result = await s.generate("p", seed=1, sync_mode=True, image_size=(size, size))
            data = await result.images[0].read()
            nbytes += len(data)

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(jobs)))
        wall = time.perf_counter() - started
    return {"wall": wall, "jobs_per_s": jobs / wall, "image_bytes": nbytes / jobs}


async def sdk_polling(base: str, jobs: int, inflight: int, interval: float) -> dict[str, Any]:
    polls = 0
    async with session(base, requests=200, jobs=inflight) as s:
        started = time.perf_counter()
        async for outcome in s.map(("p" for _ in range(jobs)), seed=1, image_size=(32, 32)):
            outcome.unwrap()
        wall = time.perf_counter() - started
    # The SDK's own count of status requests would need a hook; the server counts them instead.
    return {"wall": wall, "status_per_job": polls / jobs, "rss_mb": rss_mb()}


async def sdk_downloads(base: str, jobs: int, inflight: int) -> dict[str, Any]:
    out = tempfile.mkdtemp(prefix="sdk-dl-")
    async with session(base, requests=inflight, jobs=inflight, downloads=64) as s:
        started = time.perf_counter()
        written = 0
        async for outcome in s.map(
            ("p" for _ in range(jobs)),
            seed=1,
            num_images=4,
            sync_mode=True,
            image_size=(64, 64),
            download_to=out,
            overwrite=True,
        ):
            written += sum(os.path.getsize(p) for p in outcome.unwrap() and outcome.paths)
        wall = time.perf_counter() - started
    shutil.rmtree(out)
    return {"wall": wall, "mb_per_s": written / 1e6 / wall, "rss_mb": rss_mb()}


async def sdk_ratelimit(base: str, jobs: int, inflight: int) -> dict[str, Any]:
    async with session(base, requests=inflight, jobs=inflight) as s:
        started = time.perf_counter()
        async for outcome in s.map(
            ("p" for _ in range(jobs)), seed=1, sync_mode=True, image_size=(32, 32)
        ):
            outcome.unwrap()
        wall = time.perf_counter() - started
    return {"wall": wall, "jobs_per_s": jobs / wall}


SCENARIOS = {
    ("overhead", "raw"): raw_overhead,
    ("overhead", "sdk"): sdk_overhead,
    ("polling", "raw"): raw_polling,
    ("polling", "sdk"): sdk_polling,
    ("downloads", "raw"): raw_downloads,
    ("downloads", "sdk"): sdk_downloads,
    ("ratelimit", "raw"): raw_ratelimit,
    ("ratelimit", "sdk"): sdk_ratelimit,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=sorted({s for s, _ in SCENARIOS}))
    parser.add_argument("impl", choices=["raw", "sdk"])
    parser.add_argument("base_url")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--inflight", type=int, default=64)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--interval", type=float, default=0.1)
    args = parser.parse_args()
    func = SCENARIOS[(args.scenario, args.impl)]
    kwargs: dict[str, Any] = {"jobs": args.jobs, "inflight": args.inflight}
    if args.scenario == "overhead":
        kwargs["size"] = args.size
    if args.scenario == "polling":
        kwargs["interval"] = args.interval
    result = asyncio.run(func(args.base_url, **kwargs))  # type: ignore[operator]
    result["rss_mb"] = rss_mb()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
