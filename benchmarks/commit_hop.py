"""What row 4's worker-thread hop per file costs in the whole downloads run, not in isolation (#12).

``thread_hop.py`` times a file's commit alone. This runs the ``downloads`` scenario itself (each
client against a fresh local server, server on core 0, client on core 1), alternating, round by
round: the raw client; the SDK as it is (each file written and linked in the session's file
worker threads, ``_file_worker.py``); the SDK with that file work run inline on the event
loop, which the SDK does not do (it would block the loop for the file system's time per file)
and is measured only to price the hop; and the SDK with each commit hopping through
``anyio.to_thread``, as it did before the file worker.
Per client: wall, user and system CPU (``getrusage``), context switches; medians of ``--runs``.
It replaces a private method of the SDK to run the last two cases: a diagnostic, kept in step.

    python benchmarks/commit_hop.py --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

from run import HERE, SPECS, _pin, _stats, start_server

# Runs inside the client process, before the client's own code.
_PROBE = r"""
import atexit, json, os, resource, runpy, sys
if os.environ["COMMIT"] == "anyio":
    import anyio, anyio.to_thread, radient_async._downloads as downloads
    async def hop(self, func, *, shield=False):
        if shield:
            with anyio.CancelScope(shield=True):
                return await anyio.to_thread.run_sync(func)
        return await anyio.to_thread.run_sync(func)
    downloads.Downloader._in_thread = hop
if os.environ["COMMIT"] == "inline":
    import radient_async._downloads as downloads
    async def inline(self, func, *, shield=False):
        return func()
    downloads.Downloader._in_thread = inline
def report():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print("USAGE " + json.dumps({"user": usage.ru_utime, "system": usage.ru_stime,
        "switches": usage.ru_nvcsw + usage.ru_nivcsw}), file=sys.stderr)
atexit.register(report)
script = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(script))
runpy.run_path(script, run_name="__main__")
"""

CASES = {
    "raw": ("raw", "thread"),
    "sdk": ("sdk", "thread"),
    "sdk, commit inline": ("sdk", "inline"),
    "sdk, anyio hop (before)": ("sdk", "anyio"),
}


def _run(impl: str, commit: str) -> dict[str, float]:
    spec = SPECS["downloads"]
    server, root = start_server(spec.server)
    try:
        _stats(root, server)  # waits until it answers
        client = str(HERE / f"{impl}_client.py")
        command = [*_pin(1), sys.executable, "-c", _PROBE, client, spec.client, f"{root}/v1"]
        done = subprocess.run(
            [*command, *spec.args],
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "COMMIT": commit},
        )
    finally:
        server.terminate()
        server.wait()
    if done.returncode != 0:
        raise RuntimeError(f"{impl} client failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    usage = json.loads([t for t in done.stderr.splitlines() if t.startswith("USAGE ")][-1][6:])
    files = max(1, result["files"])
    return {
        "wall_s": result["wall"],
        "mb_per_s": result["bytes_written"] / result["wall"] / 1e6,
        "user_ms_per_file": 1000 * usage["user"] / files,
        "system_ms_per_file": 1000 * usage["system"] / files,
        "switches_per_file": usage["switches"] / files,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {name: [] for name in CASES}
    for _ in range(options.runs):
        for name, (impl, commit) in CASES.items():
            results[name].append(_run(impl, commit))
            print(json.dumps({"case": name, **results[name][-1]}), flush=True)
    for name, runs in results.items():
        medians = {key: round(statistics.median(r[key] for r in runs), 3) for key in runs[0]}
        print(f"{name:20s} " + "  ".join(f"{key} {value}" for key, value in medians.items()))


if __name__ == "__main__":
    main()
