"""The poll schedule learns: probes find how long jobs take, then most jobs are polled once.

Counts only (which jobs were polled before any was seen done, status calls per job), taken by the
server; no timing is asserted.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Awaitable
from typing import Any

import anyio
import pytest
from aiohttp import web

import radient_async as ra
from radient_async._clock import Clock

pytestmark = pytest.mark.anyio

KEY = "sk-poll-learning-42ab"
LATENCY = 0.4
PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 64 + b"\x00\x00\x00\x00IEND\xaeB`\x82"


class Jobs:
    """A server whose jobs finish ``LATENCY`` s after their submit (or as ``latencies`` say, job
    by job); it logs every status call."""

    def __init__(self, latencies: list[float] | None = None) -> None:
        self.started: dict[str, float] = {}
        self.latency: dict[str, float] = {}
        self.latencies = latencies or []
        self.polls: list[tuple[str, bool]] = []  # (request id, answered COMPLETED)
        self.ids = itertools.count()

    async def submit(self, request: web.Request) -> web.Response:
        request_id = f"r{next(self.ids)}"
        self.started[request_id] = time.monotonic()
        self.latency[request_id] = self.latencies.pop(0) if self.latencies else LATENCY
        return web.json_response({"request_id": request_id, "status": "PROCESSING"})

    async def status(self, request: web.Request) -> web.Response:
        request_id = request.query["request_id"]
        done = time.monotonic() - self.started[request_id] >= self.latency[request_id]
        self.polls.append((request_id, done))
        answer: dict[str, Any] = {"request_id": request_id, "status": "PROCESSING"}
        if done:
            origin = f"{request.scheme}://{request.host}"
            answer = {**answer, "status": "COMPLETED", "images": [{"url": f"{origin}/i.png"}]}
        return web.json_response(answer)

    def polled_before_first_done(self) -> set[str]:
        first = next(i for i, (_, done) in enumerate(self.polls) if done)
        return {request_id for request_id, _ in self.polls[:first]}


async def server_of(hostile: Any, jobs: Jobs) -> Any:
    async def image(request: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    routes = {"POST /v1/images/generate": jobs.submit, "GET /v1/images/status": jobs.status}
    return await hostile({**routes, "GET /i.png": image})


async def run_batch(session: ra.Session, count: int) -> None:
    async with anyio.create_task_group() as group:
        for _ in range(count):
            group.start_soon(session.generate, "x")


async def test_before_any_job_is_done_only_the_probes_poll(hostile: Any) -> None:
    jobs = Jobs()
    server = await server_of(hostile, jobs)
    async with ra.Session(KEY, server.base_url) as session:
        await run_batch(session, 40)
    assert len(jobs.started) == 40
    assert len(jobs.polled_before_first_done()) <= 2  # not 40 jobs polling every 0.1 s
    # the other 38 waited, then looked when the probes said jobs would be done
    assert len(jobs.polls) <= 1.5 * 40


async def test_the_waiting_jobs_are_woken_as_soon_as_a_probe_sees_one_done(hostile: Any) -> None:
    # Waiting jobs look anyway after ``max_interval``; here that is 10 minutes, so only being
    # woken by the probe's sighting lets the batch finish inside the bound.
    jobs = Jobs()
    server = await server_of(hostile, jobs)
    poll = ra.PollPolicy(max_interval=600)
    async with ra.Session(KEY, server.base_url, poll=poll) as session:
        with anyio.fail_after(30):
            await run_batch(session, 12)
    assert len(jobs.polled_before_first_done()) <= 2
    assert {request_id for request_id, done in jobs.polls if done} == set(jobs.started)


async def test_a_probes_look_goes_before_queued_submits(hostile: Any) -> None:
    # 80 submits queue for 4 request slots, each answered after 0.05 s: ~1 s of submitting. A
    # probe's looks are what every waiting job's first look is learned from, so its first look
    # (due 0.1 s after its submit) takes the next free slot, not the one after the last submit.
    jobs = Jobs()

    async def slow_submit(request: web.Request) -> web.Response:
        await anyio.sleep(0.05)
        return await jobs.submit(request)

    async def image(request: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    routes = {"POST /v1/images/generate": slow_submit, "GET /v1/images/status": jobs.status}
    server = await hostile({**routes, "GET /i.png": image})
    async with ra.Session(KEY, server.base_url, limits=ra.Limits(requests=4)) as session:
        await run_batch(session, 80)
    calls = [seen.path for seen in server.seen if seen.path != "/i.png"]
    first_look = calls.index("/v1/images/status")
    submits_after = calls[first_look:].count("/v1/images/generate")
    assert submits_after >= 40, calls  # 0 when looks queue behind every submit


async def test_a_batch_polls_each_job_about_once(hostile: Any) -> None:
    jobs = Jobs()
    server = await server_of(hostile, jobs)
    async with ra.Session(KEY, server.base_url) as session:
        outcomes = [o async for o in session.map(["x"] * 150, concurrency=25)]
    assert all(o.ok for o in outcomes)
    assert len(jobs.polls) <= 1.5 * 150  # the default schedule alone polls ~5 times per job


async def test_jobs_planned_from_what_was_learned_are_each_polled_once(hostile: Any) -> None:
    # Learned first looks are not jittered (they are as spread as the submits were). Here the
    # probes see the 1 s jobs done at 1.04 s (their grid); jittered by +-10%, about a third of
    # these first looks went before their job was done.
    jobs = Jobs(latencies=[1.0] * 44)
    server = await server_of(hostile, jobs)
    async with ra.Session(KEY, server.base_url) as session:
        await run_batch(session, 4)  # the probes learn how long jobs take
        learned = len(jobs.polls)
        await run_batch(session, 40)  # each plans its first look at its submit
    polls = Counter(request_id for request_id, _ in jobs.polls[learned:])
    assert len(polls) == 40
    assert sorted(polls.values()) == [1] * 40


class RecordingClock(Clock):
    """The system clock, noting every wait the SDK asks of it while ``recording``."""

    def __init__(self) -> None:
        self.recording = False
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> Awaitable[None]:
        if self.recording:
            self.waits.append(seconds)
        return asyncio.sleep(max(0.0, seconds))


async def test_a_job_that_missed_its_first_look_is_looked_at_again_soon(hostile: Any) -> None:
    # The second look comes at ``later`` (1.05) times the first look's age, not on the
    # policy's schedule (+25% of the job's age): a job a few milliseconds late is seen soon.
    jobs = Jobs(latencies=[0.3, 0.6])
    server = await server_of(hostile, jobs)
    clock = RecordingClock()
    poll = ra.PollPolicy(min_interval=0.01)
    async with ra.Session(KEY, server.base_url, poll=poll, clock=clock) as session:
        await session.generate("x")  # a probe: the session learns that jobs take ~0.3 s
        clock.recording = True
        await session.generate("x")  # takes 0.6 s: its first look, at ~0.3 s, misses
    first, second, *rest = clock.waits
    assert first >= 0.28  # the learned first look, made at once by a job just submitted
    assert second <= 0.06 * first  # the schedule would wait ~0.25 * first
    assert rest  # then the schedule, until it is done at 0.6 s


async def test_a_server_hint_still_wins(hostile: Any) -> None:
    jobs = Jobs()

    async def submit(request: web.Request) -> web.Response:
        response = await jobs.submit(request)
        response.headers["poll-after-ms"] = "450"
        return response

    async def image(request: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    server = await hostile(
        {
            "POST /v1/images/generate": submit,
            "GET /v1/images/status": jobs.status,
            "GET /i.png": image,
        }
    )
    async with ra.Session(KEY, server.base_url) as session:
        await run_batch(session, 20)
    assert len(jobs.polls) == 20  # every job looked at once, when the server said
