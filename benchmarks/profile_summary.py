"""Summarise a py-spy ``--format raw`` profile (``run.py --profile DIR``) as text.

    python benchmarks/profile_summary.py DIR/overhead.pyspy.txt [--top 15]

Prints the share of samples by package (leaf frame), the top leaf frames (self time) and the top
radient_async frames by inclusive time (each counted once per sample). py-spy's idle detection does
not work on this VM, so samples of threads blocked in a wait (idle worker threads, the event loop's
``select``) are counted apart and left out of the percentages.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*) \((?P<path>.*?)(?::\d+)?\)$")
_IDLE = ("Condition.wait (threading.py)", "EpollSelector.select (selectors.py)")
_PACKAGES = ("radient_async", "aiohttp", "anyio", "asyncio", "yarl", "multidict", "cattrs", "attr")


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if match is None:
        return frame
    package = _package(frame)
    name = Path(match["path"]).name
    where = f"{package}/{name}" if package in _PACKAGES else name
    return f"{match['func']} ({where})"


def _package(frame: str) -> str:
    match = _FRAME.match(frame)
    path = "/" + (match["path"] if match else frame)
    for package in _PACKAGES:
        if f"/{package}/" in path:
            return package
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("profile")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    leaf: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = idle = 0
    for line in Path(args.profile).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames, n = stack.split(";"), int(count)
        if _short(frames[-1]) in _IDLE:
            idle += n
            continue
        total += n
        leaf[_short(frames[-1])] += n
        packages[_package(frames[-1])] += n
        for frame in {f for f in frames if _package(f) == "radient_async"}:
            inclusive[_short(frame)] += n
    print(f"{total} busy samples ({idle} more waiting, left out)")
    for title, counter in (
        ("by package (self)", packages),
        ("top frames (self)", leaf),
        ("radient_async frames (inclusive)", inclusive),
    ):
        print(f"\n{title}:")
        for name, n in counter.most_common(args.top):
            print(f"  {100 * n / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
