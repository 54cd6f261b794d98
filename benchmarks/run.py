"""Run a benchmark scenario: the local server pinned to core 0 in its own process, each client
(raw aiohttp baseline, then radient_async, alternating) pinned to core 1 in a fresh process.

    python benchmarks/run.py overhead --jobs 5000 --runs 3
    python benchmarks/run.py polling --jobs 5000 --inflight 1000 --runs 3
    python benchmarks/run.py scale --jobs 10000 --runs 3 [--poll-hint]
    python benchmarks/run.py downloads --jobs 1000 --image-mib 1 --runs 3
    python benchmarks/run.py ratelimit --jobs 3000 --rate 300 --runs 3

Prints each run's JSON and a summary line (medians, ratio SDK/raw).
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
KEY = "bench-key"


def _pin(core: int) -> list[str]:
    return ["taskset", "-c", str(core)] if shutil.which("taskset") else []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(options: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    command = [
        *_pin(0),
        sys.executable,
        "-m",
        "radient_async.server",
        "--port",
        str(port),
        "--api-key",
        KEY,
        *options,
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/v1"
    for _ in range(100):
        try:
            _get(f"http://127.0.0.1:{port}/_local/stats")
            return process, base
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start")


def _get(url: str) -> dict[str, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def run_client(scenario: str, impl: str, base: str, extra: list[str]) -> dict[str, Any]:
    before = _get(base.removesuffix("/v1") + "/_local/stats")
    command = [*_pin(1), sys.executable, str(HERE / "clients.py"), scenario, impl, base, *extra]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=900)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    after = _get(base.removesuffix("/v1") + "/_local/stats")
    jobs = after["jobs_created"] - before["jobs_created"]
    result["jobs_created"] = jobs
    result["status_per_job"] = (after["status_calls"] - before["status_calls"]) / max(1, jobs)
    requests = sum(after["requests"].values()) - sum(before["requests"].values())
    result["fraction_429_server"] = (after["rate_limited"] - before["rate_limited"]) / max(
        1, requests
    )
    return result


SERVER_OPTIONS = {
    "overhead": lambda a: [],
    "polling": lambda a: ["--latency", "0.5", "--jitter", "0.2"],
    "scale": lambda a: ["--latency", "5", *(["--poll-hint"] if a.poll_hint else [])],
    "downloads": lambda a: ["--min-image-bytes", str(a.image_mib * 1024 * 1024)],
    "ratelimit": lambda a: ["--rate-limit", str(a.rate)],
}
METRIC = {
    "overhead": "jobs_per_s",
    "polling": "wall",
    "scale": "wall",
    "downloads": "mb_per_s",
    "ratelimit": "jobs_per_s",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=sorted(SERVER_OPTIONS))
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--inflight", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--poll-hint", action="store_true")
    parser.add_argument("--image-mib", type=int, default=1)
    parser.add_argument("--rate", type=float, default=300)
    parser.add_argument("--impls", default="raw,sdk")
    args = parser.parse_args()
    client_scenario = "polling" if args.scenario == "scale" else args.scenario
    extra = ["--jobs", str(args.jobs), "--inflight", str(args.inflight)]
    if args.scenario == "scale":
        extra += ["--interval", "0.5"]
    process, base = start_server(SERVER_OPTIONS[args.scenario](args))
    results: dict[str, list[dict[str, Any]]] = {impl: [] for impl in args.impls.split(",")}
    try:
        for _ in range(args.runs):
            for impl in results:
                result = run_client(client_scenario, impl, base, extra)
                results[impl].append(result)
                print(impl, json.dumps(result), flush=True)
    finally:
        process.terminate()
        process.wait(10)
    metric = METRIC[args.scenario]
    medians = {impl: statistics.median(r[metric] for r in runs) for impl, runs in results.items()}
    summary: dict[str, Any] = {"scenario": args.scenario, "metric": metric, "median": medians}
    if len(medians) == 2:
        summary["ratio_sdk_over_raw"] = round(medians["sdk"] / medians["raw"], 3)
    for key in ("status_per_job", "rss_mb", "fraction_429_server"):
        summary[key] = {
            impl: round(statistics.median(r[key] for r in runs), 3)
            for impl, runs in results.items()
        }
    print("SUMMARY", json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
