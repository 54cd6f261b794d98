"""A session's lifecycle across tasks: opened in one task, closed from another."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import anyio
import pytest

import radient_async as ra
from radient_async.server import ThreadedServer
from radient_async.testing import FAST_POLL

pytestmark = pytest.mark.anyio


def session_for(server: ThreadedServer) -> ra.Session:
    assert server.api_key is not None
    return ra.Session(server.api_key, server.base_url, poll=FAST_POLL)


async def test_a_session_closes_from_another_task(radient_server: ThreadedServer) -> None:
    radient_server.controls.set_latency(30)
    opened: list[ra.Session] = []
    handles: list[ra.JobHandle] = []

    async def opener() -> None:  # e.g. a fixture's setup, or a notebook cell
        session = await session_for(radient_server).open()
        opened.append(session)
        handles.append(await session.submit("long", image_size=(16, 16)))

    async with anyio.create_task_group() as group:
        group.start_soon(opener)
    before = {t for t in asyncio.all_tasks() if not t.done()}

    async def closer() -> None:  # e.g. the fixture's teardown, or a later cell
        await opened[0].aclose()

    async with anyio.create_task_group() as group:
        group.start_soon(closer)
    with pytest.raises(ra.JobCancelled):
        await handles[0]
    assert "closed" in repr(opened[0])
    leftover = {t for t in asyncio.all_tasks() if not t.done()} - before
    assert not leftover
    assert not [t for t in before if "radient-session" in t.get_name() and not t.done()]


async def test_aclose_is_idempotent_and_use_after_close_is_refused(
    radient_server: ThreadedServer,
) -> None:
    session = await session_for(radient_server).open()
    assert await session.providers()
    await session.aclose()
    await session.aclose()
    with pytest.raises(ra.SessionClosedError):
        await session.providers()
    with pytest.raises(ra.SessionClosedError):
        await session.open()


async def test_closing_a_never_opened_session_is_harmless() -> None:
    session = ra.Session("k", "http://127.0.0.1:9/v1")
    await session.aclose()
    with pytest.raises(ra.SessionClosedError):
        await session.submit("x")


async def test_timeout_and_max_retries_shortcuts(radient_server: ThreadedServer) -> None:
    assert radient_server.api_key is not None
    async with ra.Session(
        radient_server.api_key, radient_server.base_url, timeout=5, max_retries=2
    ) as session:
        assert await session.providers()
    with pytest.raises(ra.ConfigurationError):
        ra.Session("k", "http://127.0.0.1:9/v1", timeout=5, timeouts=ra.Timeouts())
    with pytest.raises(ra.ConfigurationError):
        ra.Session("k", "http://127.0.0.1:9/v1", max_retries=-1)


def test_a_session_opened_in_one_asyncio_run_cell_closes_in_the_next(
    radient_server: ThreadedServer,
) -> None:
    # Notebook cells share one loop; emulate two cells with two tasks on one loop.
    loop = asyncio.new_event_loop()
    try:
        session = loop.run_until_complete(session_for(radient_server).open())
        assert loop.run_until_complete(session.providers())
        loop.run_until_complete(session.aclose())
    finally:
        loop.close()


async def test_a_sessions_file_threads_end_when_it_closes(
    radient_server: ThreadedServer, tmp_path: Path
) -> None:
    def file_threads() -> int:
        return sum(t.name == "radient-file-worker" for t in threading.enumerate())

    before = file_threads()
    async with session_for(radient_server) as session:
        result = await session.generate("saved", num_images=3, image_size=(16, 16))
        assert len(await result.download(tmp_path)) == 3
        assert file_threads() > before  # the commits ran in the session's own threads
    assert file_threads() == before
