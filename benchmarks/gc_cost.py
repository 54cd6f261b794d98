"""What CPython's cyclic garbage collector costs a client, raw and SDK alike (#12, row 3).

Runs a scenario's raw and SDK clients (each against a fresh local server, server on core 0,
client on core 1), timing every collection with ``gc.callbacks``: collections and seconds per
generation, and the GC-tracked objects alive at the middle full collection with the types that
dominate them. ``--threshold`` runs the clients with ``gc.set_threshold`` changed, as an
application may; the SDK itself never touches the process's collector.

    python benchmarks/gc_cost.py scale --runs 2
    python benchmarks/gc_cost.py scale --runs 2 --threshold 50000,10,10
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from run import HERE, SPECS, _pin, _stats, start_server

# Runs inside the client process, before the client's own code.
_PROBE = r"""
import atexit, collections, gc, json, os, runpy, sys, time
counts = {0: [0, 0.0], 1: [0, 0.0], 2: [0, 0.0]}
full = []
started = [0.0]
def timed(phase, info):
    if phase == "start":
        started[0] = time.perf_counter()
    else:
        entry = counts[info["generation"]]
        entry[0] += 1
        entry[1] += time.perf_counter() - started[0]
def census(phase, info):
    if phase == "start" and info["generation"] == 2 and os.environ.get("GC_CENSUS"):
        objects = gc.get_objects()
        kinds = collections.Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in objects)
        full.append((len(objects), kinds.most_common(12)))
        del objects
if os.environ.get("GC_THRESHOLD"):
    gc.set_threshold(*map(int, os.environ["GC_THRESHOLD"].split(",")))
gc.callbacks[:0] = [census, timed]
def report():
    middle = full[len(full) // 2] if full else (0, [])
    out = {"gc": {g: [n, round(t, 3)] for g, (n, t) in counts.items()},
           "full_sizes": [n for n, _ in full], "middle_full": middle}
    print("GC " + json.dumps(out), file=sys.stderr)
atexit.register(report)
script = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(script))
runpy.run_path(script, run_name="__main__")
"""


def _run(scenario: str, impl: str, threshold: str | None, census: bool) -> dict[str, object]:
    spec = SPECS[scenario]
    server, root = start_server(spec.server)
    try:
        _stats(root, server)  # waits until it answers: a client started sooner is refused
        env = dict(os.environ, GC_THRESHOLD=threshold or "", GC_CENSUS="1" if census else "")
        client = str(Path(HERE) / f"{impl}_client.py")
        command = [*_pin(1), sys.executable, "-c", _PROBE, client, spec.client, f"{root}/v1"]
        done = subprocess.run(
            [*command, *spec.args], capture_output=True, text=True, timeout=900, env=env
        )
    finally:
        server.terminate()
        server.wait()
    if done.returncode != 0:
        raise RuntimeError(f"{impl} client failed:\n{done.stderr[-2000:]}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    line = [text for text in done.stderr.splitlines() if text.startswith("GC ")][-1]
    result.update(json.loads(line[3:]))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=sorted(SPECS))
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--impls", default="raw,sdk")
    parser.add_argument("--threshold", help="gc.set_threshold for the clients, e.g. 50000,10,10")
    parser.add_argument("--census", action="store_true", help="count objects at full collections")
    options = parser.parse_args()
    for run in range(options.runs):
        for impl in options.impls.split(","):
            result = _run(options.scenario, impl, options.threshold, options.census)
            per_generation: dict[str, list[float]] = result["gc"]  # type: ignore[assignment]
            seconds = round(sum(t for _, t in per_generation.values()), 3)
            print(json.dumps({"impl": impl, "run": run, "gc_seconds": seconds, **result}))


if __name__ == "__main__":
    main()
