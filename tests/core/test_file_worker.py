"""``FileWorker``: blocking calls in a session's own threads, with the cancellation rules of a
commit (queued calls never run once cancelled, started ones are waited for) and a clean end."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import anyio
import anyio.lowlevel
import pytest

from radient_async._file_worker import FileWorker

pytestmark = pytest.mark.anyio


def _threads_named(name: str) -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == name]


def _blocker() -> tuple[Callable[[], str], threading.Event, threading.Event]:
    """A call that says when it has started and runs until released."""
    started, release = threading.Event(), threading.Event()

    def blocked() -> str:
        started.set()
        release.wait(10)
        return "released"

    return blocked, started, release


async def _until(event: threading.Event) -> None:
    with anyio.fail_after(10):
        while not event.is_set():
            await anyio.sleep(0.001)


async def test_a_call_gives_back_its_result_and_its_exception() -> None:
    worker = FileWorker(name="fw-result")
    try:
        assert await worker.run(lambda: threading.current_thread().name) == "fw-result"

        def fails() -> None:
            raise OSError(28, "No space left on device")

        with pytest.raises(OSError, match="No space left"):
            await worker.run(fails)
    finally:
        await worker.aclose()


async def test_a_call_cancelled_while_queued_never_runs() -> None:
    worker = FileWorker(threads=1)
    blocked, started, release = _blocker()
    ran: list[str] = []
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(worker.run, blocked)
            await _until(started)
            with anyio.move_on_after(0.01):  # queued behind the blocked call, then cancelled
                await worker.run(lambda: ran.append("queued"))
            release.set()
        assert await worker.run(lambda: "after") == "after"
        assert ran == []
    finally:
        release.set()
        await worker.aclose()


async def test_a_call_cancelled_while_running_is_waited_for() -> None:
    worker = FileWorker()
    blocked, started, release = _blocker()
    finished: list[str] = []

    async def caller() -> None:
        finished.append(await worker.run(blocked))

    try:
        task = asyncio.get_running_loop().create_task(caller())
        await _until(started)
        task.cancel()
        for _ in range(20):  # the cancellation does not end the caller while the call runs
            await anyio.lowlevel.checkpoint()
        assert not task.done()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert finished == []  # cancelled: the caller does not go on with the result
    finally:
        release.set()
        await worker.aclose()


async def test_many_calls_share_a_few_threads() -> None:
    worker = FileWorker(threads=3, name="fw-few")
    seen: set[str] = set()
    lock = threading.Lock()

    def note() -> int:
        with lock:
            seen.add(threading.current_thread().name + str(threading.get_ident()))
        return 1

    try:
        results = await asyncio.gather(*(worker.run(note) for _ in range(200)))
        assert sum(results) == 200
        assert 1 <= len(seen) <= 3
        assert len(_threads_named("fw-few")) <= 3
        assert worker.calls == 200
    finally:
        await worker.aclose()


async def test_closing_ends_the_threads_and_later_calls_still_run() -> None:
    worker = FileWorker(name="fw-close")
    assert await worker.run(lambda: 1) == 1
    assert _threads_named("fw-close")
    with anyio.fail_after(10):
        await worker.aclose()
    assert _threads_named("fw-close") == []
    assert await worker.run(lambda: 2) == 2  # in a thread of anyio's, not a new one of ours
    assert _threads_named("fw-close") == []
    await worker.aclose()  # twice is harmless


async def test_closing_lets_a_queued_call_finish() -> None:
    worker = FileWorker(threads=1, name="fw-drain")
    blocked, started, release = _blocker()
    results: list[str] = []

    async def call(func: Callable[[], str]) -> None:
        results.append(await worker.run(func))

    async with anyio.create_task_group() as group:
        group.start_soon(call, blocked)
        await _until(started)
        group.start_soon(call, lambda: "queued")
        await anyio.lowlevel.checkpoint()
        closing = asyncio.get_running_loop().create_task(worker.aclose())
        await anyio.lowlevel.checkpoint()
        release.set()
        with anyio.fail_after(10):
            await closing
    assert sorted(results) == ["queued", "released"]
    assert _threads_named("fw-drain") == []


def test_a_worker_first_used_in_one_event_loop_serves_the_next_through_anyio() -> None:
    """A notebook: a session opened in one ``asyncio.run`` cell, used and closed in the next."""
    worker = FileWorker(name="fw-cells")
    assert asyncio.run(worker.run(lambda: "first cell")) == "first cell"

    async def next_cell() -> str:
        result = await worker.run(threading.current_thread)
        with anyio.fail_after(10):
            await worker.aclose()
        return result.name

    assert asyncio.run(next_cell()) != "fw-cells"
    for thread in _threads_named("fw-cells"):  # told to end; they reported to the first loop
        thread.join(10)
    assert _threads_named("fw-cells") == []


async def test_an_idle_thread_ends_after_lingering_and_a_later_call_starts_another() -> None:
    worker = FileWorker(linger=0.05, name="fw-linger")
    try:
        assert await worker.run(lambda: 1) == 1
        with anyio.fail_after(10):
            while _threads_named("fw-linger"):
                await anyio.sleep(0.01)
        assert (await worker.run(threading.current_thread)).name == "fw-linger"  # a new one
    finally:
        with anyio.fail_after(10):
            await worker.aclose()
    assert _threads_named("fw-linger") == []


async def test_two_closes_at_once_both_return_when_the_last_thread_ends() -> None:
    worker = FileWorker(name="fw-twice")
    blocked, started, release = _blocker()
    loop = asyncio.get_running_loop()
    async with anyio.create_task_group() as group:
        group.start_soon(worker.run, blocked)
        await _until(started)
        closes = [loop.create_task(worker.aclose()) for _ in range(2)]
        for _ in range(5):
            await anyio.lowlevel.checkpoint()
        release.set()
    with anyio.move_on_after(10):  # a second close used to strand the first on a lost future
        while not all(close.done() for close in closes):
            await anyio.sleep(0.01)
    assert all(close.done() for close in closes)
    assert _threads_named("fw-twice") == []
