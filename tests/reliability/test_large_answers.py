"""Large answers are parsed off the event loop, in a decoding worker process the session owns.

The stall itself is measured by ``benchmarks/loop_stall.py`` (timing never belongs in a test);
these tests check what is deterministic: where a large answer was parsed, that the worker's
verdict is the one the loop would reach, that the worker holds no key and ends with its session,
and that a dead worker costs nothing but speed.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import radient_async as ra

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]

KEY = "sk-large-answers-5e1d"
POLL = ra.PollPolicy(first_delay=0.01, min_interval=0.01, max_interval=0.02, timeout=30)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 64 + b"\x00\x00\x00\x00IEND\xaeB`\x82"
PADDING = "x" * (2 * 1024 * 1024)  # past the 1 MiB at which answers go to the worker


def big_png(size: int) -> bytes:
    return PNG[:-12] + os.urandom(size) + PNG[-12:]


def workers() -> list[int]:
    """Pids of this process's decoding workers (children running ``radient_async._offload``)."""
    found = []
    for task in Path("/proc/self/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"radient_async._offload" in cmdline:
                found.append(int(pid))
    return found


async def status_server(hostile: Any, answers: list[dict[str, Any]]) -> Any:
    """Submit says PROCESSING; status poll n gets ``answers[n]`` padded past 1 MiB."""
    polls: list[int] = []

    async def submit(request: web.Request) -> web.Response:
        return web.json_response({"request_id": "r1", "status": "PROCESSING"})

    async def status(request: web.Request) -> web.Response:
        polls.append(1)
        answer = {**answers[min(len(polls), len(answers)) - 1], "note": PADDING}
        return web.Response(text=json.dumps(answer), content_type="application/json")

    return await hostile({"POST /v1/images/generate": submit, "GET /v1/images/status": status})


async def test_a_large_answer_is_parsed_in_a_worker_that_ends_with_the_session(
    hostile: Any,
) -> None:
    image = big_png(3 * 1024 * 1024)  # its data: URL spans several decoding slices
    url = "data:image/png;base64," + base64.b64encode(image).decode()
    answer = {"request_id": "r1", "status": "COMPLETED", "images": [{"url": url}], "seed": 7}
    server = await status_server(hostile, [answer])
    async with ra.Session(KEY, server.base_url, poll=POLL) as session:
        assert workers() == []  # started on first need only
        result = await (await session.submit("x"))
        assert result.seed == 7
        assert await result.images[0].read() == image
        (pid,) = workers()
        environment = Path(f"/proc/{pid}/environ").read_bytes()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert KEY.encode() not in environment + cmdline
    assert workers() == []
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # not only gone from our children: reaped


@pytest.mark.parametrize(
    ("answer", "error", "expected"),
    [
        (
            {"request_id": "r1", "status": "COMPLETED", "images": [{"url": "x"}] * 5000},
            ra.MalformedResponseError,
            "lists 5000 images; at most 1 were asked for",
        ),
        (
            {"request_id": "r1", "status": "COMPLETED", "images": [{"url": 5}]},
            ra.JobTimeout,  # an unreadable poll is polled again, until the deadline
            r"unexpected job shape: .* @ job.images\[0\].url",
        ),
        (
            {"request_id": "r1", "status": ["COMPLETED"]},
            ra.JobTimeout,
            "unexpected job shape: .* @ job.status",
        ),
    ],
    ids=["too many images", "wrong type inside", "wrong type of status"],
)
async def test_the_worker_judges_a_large_answer_as_the_loop_would(
    hostile: Any, answer: dict[str, Any], error: type[Exception], expected: str
) -> None:
    server = await status_server(hostile, [answer])
    # The JobTimeout cases poll until a 1 s deadline; the other must not race one: it fails on
    # its third unbelievable 2 MiB answer, which a loaded CI machine once took over 1 s to reach.
    timeout = 1 if error is ra.JobTimeout else 60
    async with ra.Session(KEY, server.base_url, poll=POLL) as session:
        handle = await session.submit("x", timeout=timeout)
        with pytest.raises(error, match=expected):
            await handle
        assert len(workers()) == 1


async def test_a_large_answer_for_another_job_is_refused(hostile: Any) -> None:
    server = await status_server(hostile, [{"request_id": "r2", "status": "COMPLETED"}])
    async with ra.Session(KEY, server.base_url, poll=POLL) as session:
        with pytest.raises(ra.JobTimeout, match="asked for job r1 but the API answered for r2"):
            await (await session.submit("x", timeout=0.5))
        assert len(workers()) == 1


async def test_large_answer_that_is_not_json_is_a_typed_error(hostile: Any) -> None:
    async def submit(request: web.Request) -> web.Response:
        return web.Response(text="<html>" + PADDING, content_type="text/html")

    server = await hostile({"POST /v1/images/generate": submit})
    async with ra.Session(KEY, server.base_url, poll=POLL) as session:
        with pytest.raises(ra.MalformedResponseError, match=r"expected JSON, got text/html"):
            await session.submit("x")
        assert len(workers()) == 1


async def test_a_dead_worker_costs_only_speed(hostile: Any) -> None:
    png_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    answers = [
        {"request_id": "r1", "status": "PROCESSING"},
        {"request_id": "r1", "status": "PROCESSING"},
        {"request_id": "r1", "status": "COMPLETED", "images": [{"url": png_url}]},
    ]
    killed: list[int] = []
    polls: list[int] = []

    async def submit(request: web.Request) -> web.Response:
        return web.json_response({"request_id": "r1", "status": "PROCESSING"})

    async def status(request: web.Request) -> web.Response:
        polls.append(1)
        if len(polls) == 2:  # the worker parsed poll 1; it dies before poll 2 reaches it
            for pid in workers():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        answer = {**answers[min(len(polls), len(answers)) - 1], "note": PADDING}
        return web.Response(text=json.dumps(answer), content_type="application/json")

    server = await hostile({"POST /v1/images/generate": submit, "GET /v1/images/status": status})
    async with ra.Session(KEY, server.base_url, poll=POLL) as session:
        result = await (await session.submit("x"))
        assert await result.images[0].read() == PNG
    assert len(killed) == 1
    assert len(polls) == 3  # no poll lost to the dead worker
