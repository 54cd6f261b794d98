"""Run one benchmark: raw aiohttp baseline vs radient_async, side by side, median of N runs.

For every client run a fresh local server starts in its own process pinned to core 0 and the
client runs in its own process pinned to core 1 (``taskset``, when present). The clients take
turns, their order rotated run by run. With ``--baseline`` an older snapshot of the SDK runs beside
them as ``base`` (the same client script and server), so a change is measured against both
raw aiohttp and the code before it in one invocation. Status calls, requests and 429s are
counted by the server (``GET /_local/stats``), the clients count their own outcomes.

    python benchmarks/run.py SCENARIO [--runs 3] [--jobs N] [--out results.jsonl]
    python benchmarks/run.py SCENARIO --profile DIR    # one run of each under py-spy instead
    python benchmarks/run.py SCENARIO --tree NEW --baseline OLD   # raw, OLD and NEW in one run

Before each client run it waits (up to ``--quiet-wait`` s) for the shared machine to go quiet,
and a raw/SDK pair during which other processes used more than ``--max-noise`` cores on average
is run again (up to ``--retries`` times; the discarded runs stay in ``--out``, marked).

Scenarios: overhead, polling, scale, scale-hint, downloads, memory-1, memory-16, ratelimit.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import attrs

HERE = Path(__file__).parent
KEY = "bench-key"
SDK_CLIENT = HERE / "sdk_client.py"
CLIENTS = {"raw": HERE / "raw_client.py", "sdk": SDK_CLIENT, "base": SDK_CLIENT}
SPAWN: dict[str, Any] = {}  # cwd and env for the server and clients (see --tree)
BASELINE: dict[str, Any] = {}  # cwd and env of the "base" client (see --baseline)


@attrs.frozen
class Spec:
    """A scenario: the server's options, the clients' options, and the figure compared."""

    client: str
    server: tuple[str, ...]
    args: tuple[str, ...]
    metric: str  # jobs_per_s and mb_per_s: higher is better; wall: lower is better


_SCALE = ("--jobs", "10000", "--inflight", "10000", "--size", "32", "--interval", "0.5")
_DOWNLOADS = ("--inflight", "32", "--downloads", "16", "--num-images", "4", "--size", "64")
SPECS = {
    "overhead": Spec("overhead", (), ("--jobs", "5000", "--inflight", "64"), "jobs_per_s"),
    "polling": Spec(
        "polling",
        ("--latency", "0.5", "--jitter", "0.2"),
        ("--jobs", "5000", "--inflight", "1000", "--size", "32", "--interval", "0.1"),
        "wall",
    ),
    "scale": Spec("polling", ("--latency", "5"), _SCALE, "wall"),
    "scale-hint": Spec("polling", ("--latency", "5", "--poll-hint"), _SCALE, "wall"),
    "downloads": Spec(
        "downloads", ("--min-image-bytes", str(2**20)), ("--jobs", "1000", *_DOWNLOADS), "mb_per_s"
    ),
    "memory-1": Spec(
        "downloads", ("--min-image-bytes", str(2**20)), ("--jobs", "100", *_DOWNLOADS), "mb_per_s"
    ),
    "memory-16": Spec(
        "downloads", ("--min-image-bytes", str(2**24)), ("--jobs", "100", *_DOWNLOADS), "mb_per_s"
    ),
    "ratelimit": Spec(
        "ratelimit",
        ("--rate-limit", "300"),
        ("--jobs", "10000", "--inflight", "64", "--size", "32"),
        "jobs_per_s",
    ),
}


def _pin(core: int) -> list[str]:
    return ["taskset", "-c", str(core)] if shutil.which("taskset") else []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_cpu() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine so far, all cores (``/proc/stat``)."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _stats(root: str, server: subprocess.Popen[bytes]) -> dict[str, Any]:
    """The server's counters; retried while it starts, or answers 429 (rate-limited) to this."""
    request = urllib.request.Request(
        f"{root}/_local/stats", headers={"Authorization": f"Bearer {KEY}"}
    )
    for _ in range(300):
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())  # type: ignore[no-any-return]
        except urllib.error.HTTPError as exc:
            if exc.code != 429:
                raise
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"no stats from {root}")


def start_server(options: tuple[str, ...]) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    command = [*_pin(0), sys.executable, "-m", "radient_async.server", "--port", str(port)]
    command += ["--api-key", KEY, *options]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, **SPAWN)
    return process, f"http://127.0.0.1:{port}"


def _delta(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    requests = {k: v - before["requests"].get(k, 0) for k, v in after["requests"].items()}
    requests.pop("stats", None)
    return {
        "jobs_created": after["jobs_created"] - before["jobs_created"],
        "status_calls": after["status_calls"] - before["status_calls"],
        "rate_limited": after["rate_limited"] - before["rate_limited"],
        "requests": requests,
    }


def run_client(spec: Spec, impl: str, args: list[str], wrap: list[str]) -> dict[str, Any]:
    """One client run against a fresh server; the client's JSON plus the server's counts."""
    server, root = start_server(spec.server)
    try:
        before = _stats(root, server)
        server_cpu, load = _cpu_seconds(server.pid), os.getloadavg()[0]
        (busy, steal), client_cpu = _machine_cpu(), _children_cpu()
        command = [*_pin(1), *wrap, sys.executable, str(CLIENTS[impl]), spec.client]
        command += [f"{root}/v1", *args]
        spawn = BASELINE if impl == "base" else SPAWN
        done = subprocess.run(command, capture_output=True, text=True, timeout=900, **spawn)
        if done.returncode != 0:
            raise RuntimeError(f"{impl} client failed:\n{done.stderr}")
        busy_now, steal_now = _machine_cpu()
        busy, steal = busy_now - busy, steal_now - steal
        client_cpu = _children_cpu() - client_cpu
        after, server_cpu = _stats(root, server), _cpu_seconds(server.pid) - server_cpu
    finally:
        server.terminate()
        server.wait(10)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    result: dict[str, Any] = json.loads(lines[-1])  # (py-spy, when profiling, prints too)
    server_counts = _delta(after, before)
    wall, jobs = result["wall"], max(1, server_counts["jobs_created"])
    result["server"] = server_counts
    result["server_cpu"] = round(server_cpu, 2)
    result["load_before"] = load
    # CPU used by anything but this server and client while the client ran: the noise.
    result["others_cpu"] = round(busy - server_cpu - client_cpu, 2)
    result["steal"] = round(steal, 2)
    result["client_cpu_ms_per_job"] = 1000 * result["cpu"] / max(1, result.get("completed", 0))
    result["jobs_per_s"] = result.get("completed", 0) / wall
    result["mb_per_s"] = result.get("bytes_written", 0) / 1e6 / wall
    result["status_per_job"] = server_counts["status_calls"] / jobs
    result["fraction_429"] = server_counts["rate_limited"] / max(
        1, sum(server_counts["requests"].values())
    )
    return result


def summarise(spec: Spec, results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    def median(impl: str, key: str) -> float:
        return round(statistics.median(float(r[key]) for r in results[impl]), 4)

    keys: tuple[str, ...] = (spec.metric, "wall", "jobs_per_s", "client_cpu_ms_per_job")
    keys += ("server_cpu", "status_per_job", "fraction_429", "rss_mb")
    summary: dict[str, Any] = {k: {impl: median(impl, k) for impl in results} for k in keys}
    summary["metric"] = spec.metric
    for impl in (name for name in results if name != "raw" and "raw" in results):
        suffix = "" if impl == "sdk" else f"_{impl}"
        for key in (spec.metric, "client_cpu_ms_per_job"):
            summary[f"ratio_{key}{suffix}"] = round(summary[key][impl] / summary[key]["raw"], 3)
        pairs = zip(results[impl], results["raw"], strict=True)
        paired = statistics.median(run[spec.metric] / raw[spec.metric] for run, raw in pairs)
        summary[f"paired_ratio{suffix}"] = round(paired, 3)  # median of run-by-run ratios
    return summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=sorted(SPECS))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, help="override the scenario's job count")
    parser.add_argument("--impls", default="raw,sdk")
    parser.add_argument("--out", help="append every run and the summary to this JSONL file")
    parser.add_argument("--profile", help="run each client once under py-spy, output here")
    parser.add_argument("--tree", help="import radient_async from this directory (a snapshot)")
    parser.add_argument("--baseline", help="also run the SDK from this snapshot, as 'base'")
    parser.add_argument("--max-noise", type=float, default=0.5, help="others' cores, average")
    parser.add_argument("--retries", type=int, default=1, help="re-runs of a too noisy pair")
    parser.add_argument("--quiet-wait", type=float, default=10, help="max s to wait for quiet")
    args = parser.parse_args()
    if args.tree:
        tree = os.path.abspath(args.tree)
        SPAWN.update(cwd=tree, env={**os.environ, "PYTHONPATH": tree})
    if args.baseline:
        base = os.path.abspath(args.baseline)
        BASELINE.update(cwd=base, env={**os.environ, "PYTHONPATH": base})
    probe = [sys.executable, "-c", "import radient_async as r; print(r.__file__, r.__version__)"]
    sdk = subprocess.run(probe, capture_output=True, text=True, **SPAWN).stdout.strip()
    print("SDK", sdk, flush=True)
    spec = SPECS[args.scenario]
    client_args = list(spec.args) + (["--jobs", str(args.jobs)] if args.jobs else [])
    impls = args.impls.split(",") + (["base"] if args.baseline else [])
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
        for impl in impls:
            out = Path(args.profile) / f"{args.scenario}.{impl}.pyspy.txt"
            wrap = ["py-spy", "record", "-r", "200", "-F", "-f", "raw", "-o", str(out), "--"]
            print(json.dumps(run_client(spec, impl, client_args, wrap)), flush=True)
        return
    results: dict[str, list[dict[str, Any]]] = {impl: [] for impl in impls}
    discarded = 0
    for run in range(args.runs):
        for attempt in range(args.retries + 1):
            pair = {}
            for impl in impls[run % len(impls) :] + impls[: run % len(impls)]:  # rotated
                quiet = wait_for_quiet(args.quiet_wait)
                pair[impl] = {"run": run, "quiet_before": round(quiet, 2)}
                pair[impl].update(run_client(spec, impl, client_args, []))
            noise = max(r["others_cpu"] / r["wall"] for r in pair.values())
            kept = noise <= args.max_noise or attempt == args.retries
            for impl, result in pair.items():
                result.update(noise=round(noise, 2), kept=kept)
                _record(args.out, {"scenario": args.scenario, "impl": impl, **result})
            if kept:
                break
            discarded += 1
        for impl, result in pair.items():
            results[impl].append(result)
    summary = {"scenario": args.scenario, "runs": args.runs, "discarded_pairs": discarded}
    summary.update(summarise(spec, results))
    print("SUMMARY", end=" ")
    _record(args.out, {"summary": summary})


def wait_for_quiet(max_wait: float, window: float = 2.0, limit: float = 0.3) -> float:
    """Wait (at most ``max_wait`` s) for a ``window`` in which the machine uses < ``limit`` cores.

    Returns the load seen last, in cores. The machine is shared: this only avoids starting a run
    in the middle of someone else's burst; the run's own ``others_cpu`` says what happened during.
    """
    deadline = time.monotonic() + max_wait
    while True:
        busy = _machine_cpu()[0]
        time.sleep(window)
        level = (_machine_cpu()[0] - busy) / window
        if level < limit or time.monotonic() > deadline:
            return level


def _record(path: str | None, line: dict[str, Any]) -> None:
    print(json.dumps(line), flush=True)
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
