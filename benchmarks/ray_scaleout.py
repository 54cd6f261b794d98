"""Ray scale-out: 2 actors (``radient_async.ray.generate``) vs one process's ``session.map``.

Both run the same prompts against the same local server (in its own process, so its CPU is not
the client's), save the same PNGs, and are measured the same way: wall time, client CPU, and the
jobs the server created. ``--budget`` instead runs 4 actors under a server rate limit, with and
without the global submit budget, and counts 429s and failed rows.

    python benchmarks/ray_scaleout.py --prompts 300 --latency 0.5
    python benchmarks/ray_scaleout.py --budget --prompts 200 --rate-limit 30 --requests 24

Client CPU: the driver's own ``getrusage(RUSAGE_SELF)`` plus, for Ray, ``RUSAGE_CHILDREN`` between
``ray.init`` and ``ray.shutdown``: every Ray process (GCS, raylet, workers, the actors), which is
what Ray costs on a machine, not just the actors' share.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import ray

import radient_async as ra
import radient_async.ray as rr

KEY = "bench-key"
SIZE = "square"


@contextlib.contextmanager
def local_server(latency: float, rate_limit: float | None) -> Iterator[str]:
    """The local server in a process of its own; yields its base URL."""
    command = [sys.executable, "-m", "radient_async.server", "--port", "0", "--api-key", KEY]
    command += ["--latency", str(latency), "--poll-hint"]
    if rate_limit is not None:
        command += ["--rate-limit", str(rate_limit)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(10)


def server_stats(base_url: str) -> dict[str, Any]:
    origin = base_url.removesuffix("/v1")
    request = urllib.request.Request(
        f"{origin}/_local/stats", headers={"Authorization": f"Bearer {KEY}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        stats: dict[str, Any] = json.loads(response.read())
    return stats


def cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def write_prompts(folder: str, count: int) -> str:
    path = os.path.join(folder, "prompts.parquet")
    prompts = [f"a lighthouse at dusk, take {i}" for i in range(count)]
    pq.write_table(pa.table({"id": list(range(count)), "prompt": prompts}), path)
    return path


def one_session(base_url: str, count: int, folder: str) -> dict[str, Any]:
    """Every prompt through one ``session.map`` in this process, images saved to a folder."""

    async def main() -> int:
        failed = 0
        async with ra.Session(KEY, base_url) as session:
            prompts = [f"a lighthouse at dusk, take {i}" for i in range(count)]
            async for outcome in session.map(prompts, download_to=folder, image_size=SIZE):
                failed += not outcome.ok
        return failed

    before = server_stats(base_url)["jobs_created"]
    cpu_before, started = cpu(resource.RUSAGE_SELF), time.perf_counter()
    failed = asyncio.run(main())
    wall = time.perf_counter() - started
    return {
        "client": "one session.map",
        "wall_s": round(wall, 2),
        "client_cpu_s": round(cpu(resource.RUSAGE_SELF) - cpu_before, 2),
        "jobs_created": server_stats(base_url)["jobs_created"] - before,
        "failed_rows": failed,
    }


def ray_run(base_url: str, source: str, output: str, actors: int, **extra: Any) -> dict[str, Any]:
    """``generate`` on a fresh local cluster; CPU counts the driver and every Ray process."""
    before = server_stats(base_url)
    self_before, children_before = cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    started = time.perf_counter()
    summary = rr.generate(
        source,
        output=output,
        id_column="id",
        api_key=KEY,
        base_url=base_url,
        actors=actors,
        defaults={"image_size": SIZE},
        **extra,
    )
    wall = time.perf_counter() - started
    ray.shutdown()
    after = server_stats(base_url)
    return {
        "client": f"ray generate, {actors} actors"
        + (f" + budget {extra['requests_per_second']}/s" if "requests_per_second" in extra else ""),
        "wall_s": round(wall, 2),
        "client_cpu_s": round(
            cpu(resource.RUSAGE_SELF)
            - self_before
            + cpu(resource.RUSAGE_CHILDREN)
            - children_before,
            2,
        ),
        "jobs_created": after["jobs_created"] - before["jobs_created"],
        "server_429s": after["rate_limited"] - before["rate_limited"],
        "failed_rows": summary.failed,
    }


def scaleout(args: argparse.Namespace, folder: str) -> None:
    source = write_prompts(folder, args.prompts)
    with local_server(args.latency, None) as base_url:
        print(json.dumps(one_session(base_url, args.prompts, os.path.join(folder, "map"))))
    with local_server(args.latency, None) as base_url:
        output = os.path.join(folder, "ray")
        result = ray_run(base_url, source, output, actors=2, block_rows=args.block_rows)
        print(json.dumps(result))


def budget(args: argparse.Namespace, folder: str) -> None:
    source = write_prompts(folder, args.prompts)
    for budget in (None, args.requests):
        with local_server(args.latency, args.rate_limit) as base_url:
            extra: dict[str, Any] = {"block_rows": args.block_rows}
            if budget is not None:
                extra["requests_per_second"] = budget
            output = os.path.join(folder, f"budget-{budget}")
            print(json.dumps(ray_run(base_url, source, output, actors=4, **extra)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=300)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--budget", action="store_true", help="the rate-budget experiment")
    parser.add_argument("--rate-limit", type=float, default=30.0, help="server requests/s")
    parser.add_argument("--requests", type=float, default=24.0, help="pool requests/s budget")
    parser.add_argument("--block-rows", type=int, default=25, help="rows per Ray block")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        (budget if args.budget else scaleout)(args, folder)


if __name__ == "__main__":
    main()
