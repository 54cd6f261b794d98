"""Would an optional faster event loop (uvloop) or JSON codec (orjson) help? (issue #12)

Two measurements, each A/B in the same run:

- the SDK's ``overhead`` client (``sdk_client.py``) on asyncio's loop and on uvloop, alternating,
  against one local server pinned to core 0 (client on core 1): jobs/s and client CPU per job;
- ``json`` against ``orjson`` on what the SDK encodes and decodes per job: a request body and
  a status answer (best of 5 x 20,000).

    pip install uvloop orjson
    python benchmarks/alternatives.py --runs 3 --jobs 4000
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import timeit
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import _pin, start_server  # noqa: E402

UVLOOP = "import uvloop, asyncio; asyncio.set_event_loop_policy(uvloop.EventLoopPolicy()); "
CLIENT = "import runpy, sys; sys.argv = {argv!r}; runpy.run_path({path!r}, run_name='__main__')"
REQUEST = {"prompt": "a lighthouse at dusk", "num_images": 1, "sync_mode": False, "seed": 7}
ANSWER = {
    "request_id": "imgreq_0123456789abcdef",
    "status": "COMPLETED",
    "provider": "local",
    "seed": 7,
    "images": [{"url": "http://127.0.0.1:8000/v1/files/imgreq_0123456789abcdef/0.png"}],
}


def client_run(base_url: str, jobs: int, uvloop: bool) -> dict[str, float]:
    argv = ["sdk_client.py", "overhead", base_url, "--jobs", str(jobs), "--inflight", "64"]
    code = (UVLOOP if uvloop else "") + CLIENT.format(argv=argv, path=str(HERE / "sdk_client.py"))
    done = subprocess.run(
        [*_pin(1), sys.executable, "-c", code], cwd=HERE, capture_output=True, text=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"jobs_per_s": jobs / result["wall"], "cpu_ms_per_job": 1000 * result["cpu"] / jobs}


def event_loops(runs: int, jobs: int) -> None:
    server, root = start_server(())
    try:
        time.sleep(2)
        rows: dict[str, list[dict[str, float]]] = {"asyncio": [], "uvloop": []}
        for _ in range(runs):
            for name in rows:
                rows[name].append(client_run(f"{root}/v1", jobs, name == "uvloop"))
    finally:
        server.terminate()
        server.wait()
    for name, results in rows.items():
        rate = statistics.median(r["jobs_per_s"] for r in results)
        cpu = statistics.median(r["cpu_ms_per_job"] for r in results)
        print(json.dumps({"loop": name, "jobs_per_s": round(rate), "cpu_ms_per_job": cpu}))


def codecs() -> None:
    import orjson

    body = json.dumps(ANSWER).encode()
    cases = {
        "json": (
            lambda: json.dumps(REQUEST, separators=(",", ":")).encode(),
            lambda: json.loads(body),
        ),
        "orjson": (lambda: orjson.dumps(REQUEST), lambda: orjson.loads(body)),
    }
    for name, (dumps, loads) in cases.items():
        best = min(
            timeit.repeat(lambda enc=dumps, dec=loads: (enc(), dec()), number=20_000, repeat=5)
        )
        print(
            json.dumps(
                {"codec": name, "us_per_job_dumps_plus_loads": round(best / 20_000 * 1e6, 2)}
            )
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=4000)
    options = parser.parse_args()
    codecs()
    event_loops(options.runs, options.jobs)
