"""Client instructions per job, counted by valgrind: a figure the shared machine cannot move.

Wall-clock and CPU time on this VM swing by ±30% between invocations, so a change worth 1–5% of
a job's CPU cannot be told from noise with them. valgrind's ``callgrind`` counts every machine
instruction the client process executes, whatever else the host is doing. Each client runs a
scenario twice, with ``--small`` and ``--large`` jobs, against a fresh local server (not under
valgrind); the difference divided by the difference in jobs is the cost of one job, with the
interpreter's start-up and imports taken out. Repeat runs agree to about 1% (the event loop
batches a varying number of ready responses per iteration). For a CPU-bound client (the
``overhead`` row) raw's count over the SDK's predicts their jobs/s ratio.

    python benchmarks/instructions.py [--scenario overhead] [--small 100] [--large 600]
    python benchmarks/instructions.py --tree /tmp/wt_new --baseline /tmp/wt_old   # A/B

``--tree``/``--baseline`` name checkouts of the SDK (``git worktree add``) whose package the
``sdk``/``base`` clients import. Needs ``valgrind``; a run of 600 jobs takes about a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from run import CLIENTS, _stats, start_server

_TOTAL = re.compile(rb"^summary:\s+(\d+)", re.MULTILINE)


def count(impl: str, scenario: str, jobs: int, tree: str | None) -> int:
    """Instructions the client executes running ``jobs`` jobs of ``scenario``."""
    server, root = start_server(())
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [tree, env.get("PYTHONPATH")]))
    try:
        _stats(root, server)  # waits until it answers
        with tempfile.TemporaryDirectory(prefix="callgrind-") as folder:
            out = Path(folder, "out")
            command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
            command += [sys.executable, str(CLIENTS[impl]), scenario, f"{root}/v1"]
            command += ["--jobs", str(jobs)]
            done = subprocess.run(
                command, capture_output=True, text=True, env=env, cwd=Path(__file__).parent
            )
            result = json.loads(done.stdout.strip().splitlines()[-1])
            if done.returncode != 0 or result.get("completed") != jobs:
                raise SystemExit(f"{impl} did not complete {jobs} jobs: {done.stdout[-500:]}")
            found = _TOTAL.search(out.read_bytes())
            assert found is not None, "callgrind wrote no summary"
            return int(found.group(1))
    finally:
        server.terminate()
        server.wait()


def per_job(impl: str, scenario: str, small: int, large: int, tree: str | None) -> float:
    """Instructions per job: the large run's count less the small run's, per job between them."""
    more, fewer = count(impl, scenario, large, tree), count(impl, scenario, small, tree)
    return (more - fewer) / (large - small)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="overhead", choices=("overhead",))
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=600)
    parser.add_argument("--tree", help="a checkout whose radient_async the sdk client imports")
    parser.add_argument("--baseline", help="a checkout run beside it as base")
    args = parser.parse_args()
    runs: dict[str, str | None] = {"raw": None, "sdk": args.tree}
    if args.baseline:
        runs["base"] = args.baseline
    figures = {
        impl: per_job(impl, args.scenario, args.small, args.large, tree)
        for impl, tree in runs.items()
    }
    raw = figures["raw"]
    for impl, figure in figures.items():
        ratio = raw / figure
        print(f"{impl:5s} {figure / 1000:9.1f} K instructions per job   raw/{impl} {ratio:.3f}")
    json.dump({impl: round(figure) for impl, figure in figures.items()}, sys.stderr)
    print(file=sys.stderr)


if __name__ == "__main__":
    main()
