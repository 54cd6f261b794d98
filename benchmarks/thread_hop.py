"""Is a small file's commit worth doing on the event loop instead of in a worker thread? (#12)

The SDK writes every downloaded file in a worker thread: the temp file, the ``flock``, the link
into place. For a small image that is one thread hop. This measures, per file of ``--size``
bytes, in one run and alternating rounds:

- the file work itself, run inline (what the loop would be blocked for, per file);
- the same work through the session's ``FileWorker`` (what the SDK does), and through
  ``anyio.to_thread`` (what it did before);
- a bare hop (a no-op through each), the part a loop-side commit would save.

One save at a time, so no hop here can share a wake-up with another: this prices the hop alone.
``commit_hop.py`` prices it inside the whole ``downloads`` run, where the file worker batches.

Process CPU (user + system, ``getrusage``) and wall time per file, median of ``--rounds``.

    python benchmarks/thread_hop.py --files 2000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable

import anyio.to_thread

from radient_async._file_worker import FileWorker
from radient_async._paths import commit_file, open_temp_beside


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _writer(folder: str, size: int) -> Callable[[], None]:
    body, count = b"\x89PNG" + b"x" * (size - 4), iter(range(10**9))

    def write_one() -> None:
        target = os.path.join(folder, f"{next(count)}.png")
        temp, handle = open_temp_beside(target)
        handle.write(body)
        commit_file(temp, handle, target, overwrite=False)

    return write_one


async def _per_file(files: int, step: Callable[[], Awaitable[None] | None]) -> tuple[float, float]:
    cpu, wall = _cpu(), time.perf_counter()
    for _ in range(files):
        result = step()
        if result is not None:
            await result
    return (_cpu() - cpu) / files * 1e6, (time.perf_counter() - wall) / files * 1e6


async def main(files: int, rounds: int, size: int) -> None:
    worker = FileWorker()
    with tempfile.TemporaryDirectory() as folder:
        write = _writer(folder, size)
        cases: dict[str, Callable[[], Awaitable[None] | None]] = {
            "file work inline (loop blocked)": write,
            "file work in the file worker (the SDK)": lambda: worker.run(write),
            "file work through anyio.to_thread": lambda: anyio.to_thread.run_sync(write),
            "bare hop, file worker": lambda: worker.run(lambda: None),
            "bare hop, anyio.to_thread": lambda: anyio.to_thread.run_sync(lambda: None),
        }
        seen: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
        try:
            for _ in range(rounds):
                for name, step in cases.items():
                    seen[name].append(await _per_file(files, step))
        finally:
            await worker.aclose()
    print(f"{files} files of {size} bytes, median of {rounds} rounds, per file:")
    for name, samples in seen.items():
        cpu = statistics.median(s[0] for s in samples)
        wall = statistics.median(s[1] for s in samples)
        print(f"  {name:40s} {cpu:7.0f} us CPU  {wall:7.0f} us wall")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", type=int, default=1000)
    options = parser.parse_args()
    asyncio.run(main(options.files, options.rounds, options.size))
