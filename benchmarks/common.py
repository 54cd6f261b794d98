"""What the two benchmark clients share: options, the request they send, and the result line.

Both clients take the same command line, ``SCENARIO BASE_URL [options]``, and print one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections import Counter

import attrs

KEY = "bench-key"
PROMPT = "a lighthouse at dusk"
SEED = 1
SCENARIOS = ("overhead", "polling", "downloads", "ratelimit")


@attrs.frozen(kw_only=True)
class Options:
    """One client run: how many jobs, how many in flight, and the scenario's knobs."""

    scenario: str
    base_url: str
    jobs: int
    inflight: int
    size: int
    num_images: int
    downloads: int
    interval: float
    out_dir: str


def parse_options() -> Options:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument("base_url")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--inflight", type=int, default=64, help="jobs in flight")
    parser.add_argument("--size", type=int, default=128, help="image width and height")
    parser.add_argument("--num-images", type=int, default=1)
    parser.add_argument("--downloads", type=int, default=16, help="image downloads in flight")
    parser.add_argument("--interval", type=float, default=0.1, help="raw client's poll interval")
    parser.add_argument("--out-dir", default="/tmp", help="where downloads write their files")
    args = parser.parse_args()
    return Options(
        scenario=args.scenario,
        base_url=args.base_url,
        jobs=args.jobs,
        inflight=args.inflight,
        size=args.size,
        num_images=args.num_images,
        downloads=args.downloads,
        interval=args.interval,
        out_dir=args.out_dir,
    )


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Stopwatch:
    """Wall-clock and this process's CPU time (all threads) since it was made."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self) -> Stopwatch:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        return self


def emit(timed: Stopwatch, counts: Counter[str]) -> None:
    """Print the run's one JSON line: wall and CPU time, peak RSS and the client's counters."""
    times = {"wall": round(timed.wall, 4), "cpu": round(timed.cpu, 4)}
    print(json.dumps({**times, "rss_mb": round(peak_rss_mb(), 1), **counts}), flush=True)
