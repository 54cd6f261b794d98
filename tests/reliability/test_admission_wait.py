"""Waiting for the session's own turn (its rate gate, its slots) is not part of a call's timeout.

A call's ``Timeouts.request`` (or ``download``) is for the server to answer, retries included.
A busy session may queue a call behind its own traffic for much longer than that; giving up there
would fail work the server never saw, or lose a paid job whose first, cut-short attempt had
already created it. A job's calls still wait no longer than the job's own deadline.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import radient_async as ra
from radient_async.server import ServerConfig, ThreadedServer
from radient_async.testing import FAST_POLL

pytestmark = pytest.mark.anyio

KEY = "admission-key"
TINY = (16, 16)
QUICK = ra.RetryPolicy(initial_backoff=0.01, max_backoff=0.1)


@pytest.fixture
def radient_server_config() -> ServerConfig:
    return ServerConfig(api_key=KEY, seed=9)


def session_for(server: ThreadedServer, **options: Any) -> ra.Session:
    return ra.Session(KEY, server.base_url, poll=FAST_POLL, retry=QUICK, **options)


async def test_calls_queued_for_a_request_slot_keep_their_whole_timeout(
    radient_server: ThreadedServer,
) -> None:
    # Ten calls through one slot, each answered in 0.15 s: the last waits ~1.35 s for its turn,
    # more than twice its 0.6 s timeout, and still gets its answer.
    radient_server.controls.inject("slow", rate=1.0, endpoints="providers", delay=0.15)
    limits, timeouts = ra.Limits(requests=1), ra.Timeouts(request=0.6)
    answers: list[object] = []
    async with (
        session_for(radient_server, limits=limits, timeouts=timeouts) as session,
        anyio.create_task_group() as group,
    ):
        for _ in range(10):

            async def ask() -> None:
                answers.append(await session.providers())

            group.start_soon(ask)
    assert len(answers) == 10
    assert radient_server.stats.requests["providers"] == 10  # one attempt each: none timed out


async def test_downloads_queued_for_a_download_slot_keep_their_whole_timeout(
    radient_server: ThreadedServer,
) -> None:
    timeouts = ra.Timeouts(download=0.6)
    async with session_for(radient_server, limits=ra.Limits(downloads=1), timeouts=timeouts) as s:
        results = [await s.generate(f"queued {i}", num_images=4, image_size=TINY) for i in (1, 2)]
        radient_server.controls.inject("slow", rate=1.0, endpoints="files", delay=0.15)
        images = [image for result in results for image in result.images]
        read: list[bytes] = []
        async with anyio.create_task_group() as group:
            for image in images:

                async def fetch(image: ra.Image = image) -> None:
                    read.append(await image.read())

                group.start_soon(fetch)
    assert len(read) == 8
    assert all(read)
    assert radient_server.stats.requests["files"] == 8  # one attempt each: none timed out


async def held_back(server: ThreadedServer, session: ra.Session, seconds: float) -> None:
    """Have the server answer one call 429 asking for ``seconds``: every new request waits."""
    server.controls.inject("429", next_n=1, endpoints="providers", retry_after=seconds)
    with pytest.raises(ra.RateLimitError):
        await session.providers()  # no retry fits in its own 0.5 s


async def test_a_submit_held_back_by_a_429_keeps_its_whole_timeout(
    radient_server: ThreadedServer,
) -> None:
    # The submit waits the 1 s hold out in the gate, longer than its 0.5 s timeout, and then
    # creates its one job.
    async with session_for(radient_server, timeouts=ra.Timeouts(request=0.5)) as session:
        await held_back(radient_server, session, 1.0)
        result = await session.generate("after the hold", sync_mode=True, image_size=TINY)
    assert result.images
    assert radient_server.stats.jobs_created == 1
    assert radient_server.stats.requests["generate"] == 1


async def test_a_jobs_own_deadline_still_bounds_the_wait_for_its_turn(
    radient_server: ThreadedServer,
) -> None:
    async with session_for(radient_server, timeouts=ra.Timeouts(request=0.5)) as session:
        await held_back(radient_server, session, 5.0)
        with pytest.raises(ra.APITimeoutError, match="rate limiter"):
            await session.submit("wanted within 0.5 s", timeout=0.5, image_size=TINY)
    assert radient_server.stats.requests.get("generate", 0) == 0  # nothing was sent, nothing paid
