"""Where a job's client CPU goes, layer by layer: raw aiohttp, then each SDK layer on top (#12).

Each case makes the same HTTP call, one at a time, against the local server (its own process,
pinned to core 0; this process is pinned to core 1): raw aiohttp; the SDK's transport; its call
engine (rate gate, slots, retries); ``Jobs.submit`` (idempotency key, parsing, the handle and
its result); ``Session.generate``. The image read likewise: raw ``get``, ``Transport.stream``,
``Calls.stream``, ``Image.read``. Saving it to disk: raw ``get`` written to a file on the loop,
``Image.download`` (its commit in a worker thread), ``GenerationResult.download`` of the one image
(plus a hop to check the folder; ``map`` saves the same way, the folder checked once per batch;
it replaces one file, the other two make a new file per call).
The difference between two rows is what that layer costs.

Process CPU per call (``time.process_time``), cases interleaved round by round, the minimum over
``--rounds`` (the least-disturbed round: this VM is shared). It also times a bare chain of
coroutines, the cost of one ``async def`` layer, and one task started in an anyio task group
against one bare asyncio task (a watched job runs one). It reads the session's private attributes to
reach the inner layers: a diagnostic, kept in step with the code.

    python benchmarks/layers.py --calls 600 --rounds 9
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import anyio
from common import KEY, PROMPT, SEED
from run import _stats, start_server

import radient_async as ra
from radient_async._endpoint import HttpRequest
from radient_async._protocol import build_generate

Case = Callable[[], Awaitable[Any]]


def _layers(
    session: ra.Session,
    raw: aiohttp.ClientSession,
    base: str,
    result: ra.GenerationResult,
    out: str,
) -> dict[str, Case]:
    image = result.images[0]
    jobs = session._jobs
    calls, api = jobs.calls, jobs.api
    transport = calls._transport
    request = ra.GenerationRequest(prompt=PROMPT, image_size=(128, 128), seed=SEED, sync_mode=True)
    body = {"prompt": PROMPT, "image_size": {"width": 128, "height": 128}, "seed": SEED}
    body["sync_mode"] = True
    headers = {"Authorization": f"Bearer {KEY}"}
    url = image.url
    get = HttpRequest("GET", url, jobs._fetcher._own_headers)

    async def raw_generate() -> Any:
        async with raw.post(f"{base}/images/generate", json=body, headers=headers) as response:
            return await response.json()

    async def raw_get() -> bytes:
        async with raw.get(url) as response:
            return await response.read()

    names = itertools.count()  # each save makes a new file, as a batch does

    async def raw_save() -> None:
        async with raw.get(url) as response:
            with open(os.path.join(out, f"raw-{next(names)}.png"), "wb") as file:
                async for chunk in response.content.iter_chunked(256 * 1024):
                    file.write(chunk)

    async def transport_stream() -> bytes:
        with await transport.stream(get, timeout=300.0) as response:
            return await response.read()

    async def whole(_: HttpRequest, response: Any) -> bytes:
        return await response.read()  # type: ignore[no-any-return]

    def send() -> Awaitable[Any]:
        http = build_generate(api, request, "k" * 32)
        return transport.send(http, max_bytes=1 << 20, timeout=60.0)

    def call() -> Awaitable[Any]:
        now = calls.clock.now()
        http = build_generate(api, request, "k" * 32)
        return calls.api(http, deadline=now + 60, latest=now + 600)

    return {
        "generate: raw aiohttp": raw_generate,
        "generate: Transport.send": send,
        "generate: Calls.api": call,
        "generate: Jobs.submit": lambda: jobs.submit(request),
        "generate: Session.generate": lambda: session.generate(request),
        "image: raw aiohttp": raw_get,
        "image: Transport.stream": transport_stream,
        "image: Calls.stream": lambda: calls.stream(
            get, deadline=calls.clock.now() + 300, handler=whole
        ),
        "image: Image.read": image.read,
        "save: raw aiohttp, written on the loop": raw_save,
        "save: Image.download": lambda: image.download(os.path.join(out, f"sdk-{next(names)}.png")),
        "save: GenerationResult.download": lambda: result.download(out, overwrite=True),
    }


async def _coroutine_layer(depth: int = 5, calls: int = 200_000) -> float:
    """CPU of one ``async def`` layer that only awaits the next, in µs."""

    async def leaf() -> int:
        return 1

    async def chain(level: int) -> int:
        return await (chain(level - 1) if level else leaf())

    timings = []
    for levels in (0, depth):
        start = time.process_time()
        for _ in range(calls):
            await chain(levels)
        timings.append(time.process_time() - start)
    return (timings[1] - timings[0]) / calls / depth * 1e6


async def _task_costs(tasks: int = 1000, rounds: int = 5) -> dict[str, float]:
    """CPU per task, started and run to its end: in an anyio task group, and as a bare asyncio
    task kept in a set (what a hand-rolled group would do), in µs; min over ``rounds``."""

    async def nothing() -> None:
        pass

    best = {"one anyio task-group task": math.inf, "one bare asyncio task": math.inf}
    for _ in range(rounds):
        start = time.process_time()
        async with anyio.create_task_group() as group:
            for _ in range(tasks):
                group.start_soon(nothing)
        anyio_cost = (time.process_time() - start) / tasks * 1e6
        start = time.process_time()
        running: set[asyncio.Task[None]] = set()
        for _ in range(tasks):
            task = asyncio.create_task(nothing())
            running.add(task)
            task.add_done_callback(running.discard)
        await asyncio.gather(*running)
        bare_cost = (time.process_time() - start) / tasks * 1e6
        best["one anyio task-group task"] = min(best["one anyio task-group task"], anyio_cost)
        best["one bare asyncio task"] = min(best["one bare asyncio task"], bare_cost)
    return best


async def main(base: str, calls: int, rounds: int) -> dict[str, float]:
    async with ra.Session(KEY, base) as session, aiohttp.ClientSession() as raw:
        first = await session.generate(PROMPT, sync_mode=True, image_size=(128, 128), seed=SEED)
        out = tempfile.mkdtemp(prefix="layers-")
        cases = _layers(session, raw, base, first, out)
        best = dict.fromkeys(cases, float("inf"))
        try:
            for _ in range(rounds):
                for name, case in cases.items():
                    for _ in range(20):
                        await case()
                    start = time.process_time()
                    for _ in range(calls):
                        await case()
                    best[name] = min(best[name], (time.process_time() - start) / calls * 1e6)
        finally:
            shutil.rmtree(out)
    best["one async def layer"] = await _coroutine_layer()
    best.update(await _task_costs())
    return {name: round(value, 2) for name, value in best.items()}


def _cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=600, help="calls per case per round")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    server, root = start_server(())
    try:
        _stats(root, server)  # waits until it answers
        result = asyncio.run(main(f"{root}/v1", args.calls, args.rounds))
    finally:
        server.terminate()
        server.wait()
    for name, micros in result.items():
        print(f"{name:30s} {micros:8.2f} µs CPU per call")
    json.dump(result, sys.stderr)
    print(file=sys.stderr)


if __name__ == "__main__":
    _cli()
