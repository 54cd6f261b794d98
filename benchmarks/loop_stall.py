"""The longest event-loop stall while the SDK reads hostile-sized answers (issue #11's ~50 ms).

A ticker task sleeps 1 ms in a loop and records the longest gap between its wake-ups while a
session polls a job whose status answer is ~94 MB of JSON (a 42 MB ``data:`` image and 50 MB of
padding), then reads that image. The server runs in a process of its own, so its work never
holds this process's GIL (a server thread would: its ``json.dumps`` stalled this loop too).

    python benchmarks/loop_stall.py
"""

from __future__ import annotations

import asyncio
import base64
import json
import multiprocessing
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event

from aiohttp import web

import radient_async as ra

KEY = "sk-loop-stall-0000"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64 + b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _answer() -> bytes:
    big_png = PNG[:-12] + b"\x00" * (30 * 1024 * 1024) + PNG[-12:]
    data_url = "data:image/png;base64," + base64.b64encode(big_png).decode()
    job = {"request_id": "r1", "status": "COMPLETED", "images": [{"url": data_url}]}
    return json.dumps({**job, "note": "x" * (50 * 1024 * 1024)}).encode()


def serve(ports: Queue[int], done: Event) -> None:
    """The server, in a process of its own: its work must not hold this process's GIL."""
    body = _answer()

    async def status(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    async def run() -> None:
        app = web.Application()
        app.router.add_get("/v1/images/status", status)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        ports.put(runner.addresses[0][1])
        while not done.is_set():
            await asyncio.sleep(0.05)
        await runner.cleanup()

    asyncio.run(run())


async def main() -> None:
    context = multiprocessing.get_context("spawn")
    ports: Queue[int] = context.Queue()
    done = context.Event()
    server = context.Process(target=serve, args=(ports, done))
    server.start()
    port = ports.get()
    worst = 0.0
    stop = False

    async def ticker() -> None:
        nonlocal worst
        last = time.perf_counter()
        while not stop:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            worst = max(worst, now - last)
            last = now

    limits = ra.Limits(max_response_bytes=256 * 1024 * 1024)
    try:
        async with ra.Session(KEY, f"http://127.0.0.1:{port}/v1", limits=limits) as session:
            tick = asyncio.create_task(ticker())
            await asyncio.sleep(0.01)
            result = await session.job("r1")
            status_stall, worst = worst, 0.0
            data = await result.images[0].read()
            stop = True
            await tick
    finally:
        done.set()
        server.join()
    body = _answer()
    start = time.perf_counter()
    json.loads(body)
    on_loop = time.perf_counter() - start
    print(
        json.dumps(
            {
                "status_body_mb": round(len(body) / 1e6, 1),
                "image_bytes": len(data),
                "worst_stall_ms_reading_status": round(status_stall * 1000, 1),
                "worst_stall_ms_reading_image": round(worst * 1000, 1),
                "json_loads_on_the_loop_would_take_ms": round(on_loop * 1000, 1),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
