"""Cancellation and cleanup: leaving early stops everything the SDK started, and leaves no trace.

After a batch is abandoned (``break``, a cancel scope, a cancelled task), a handle is cancelled, the
``async with`` body raises, or the session is left with jobs running: within one second no task the
SDK started is still running, no further request reaches the server, no ``*.part`` file is left,
nothing is left unclosed (ResourceWarning), and the same holds under asyncio's debug mode.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import anyio
import pytest

import radient_async as ra
from radient_async.server import ServerConfig, ThreadedServer

pytestmark = pytest.mark.anyio

KEY = "sk-cancel-2a9e6f1b0c47d583"
TINY = (32, 32)
POLL = ra.PollPolicy(first_delay=0.01, min_interval=0.01, max_interval=0.05, timeout=60)
RETRY = ra.RetryPolicy(max_retries=3, initial_backoff=0.005, max_backoff=0.02)
BIG_IMAGE = 6 * 1024 * 1024  # above the SDK's 4 MiB single-write size: spills to a .part file


def session_for(server: ThreadedServer, **options: Any) -> ra.Session:
    return ra.Session(KEY, server.base_url, poll=POLL, retry=RETRY, **options)


def part_files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.name.endswith(".part")]


@pytest.fixture
def server() -> Iterator[ThreadedServer]:
    """Jobs take 0.2-0.6 s, so a batch of 500 is mostly in flight when it is abandoned."""
    with ThreadedServer(ServerConfig(api_key=KEY, latency=0.4, latency_jitter=0.2)) as running:
        yield running


async def assert_server_goes_quiet(server: ThreadedServer, within: float = 3.0) -> None:
    """The server's request count stops moving: nothing the SDK started is still sending.

    Requests written just before a cancel may reach the (threaded, busy) server a little later, so
    this waits for a quiet window of 0.3 s rather than demanding silence at once; a surviving
    poller asks every 50 ms at most and would never let the count settle.
    """
    deadline = anyio.current_time() + within
    count, since = sum(server.stats.requests.values()), anyio.current_time()
    while anyio.current_time() - since < 0.3:
        assert anyio.current_time() < deadline, f"still busy: {dict(server.stats.requests)}"
        await anyio.sleep(0.05)
        now = sum(server.stats.requests.values())
        if now != count:
            count, since = now, anyio.current_time()


async def test_breaking_out_of_a_batch_of_500(
    server: ThreadedServer, tmp_path: Path, task_watch: Any
) -> None:
    watch = task_watch()
    async with session_for(server) as session:
        opened = task_watch()  # the open session's own task is not a leak
        seen = 0
        # 100 at a time: an item is read only once the consumer has taken an earlier outcome,
        # so however fast the server is, breaking after 20 leaves at most 120 jobs created.
        prompts = map(str, range(500))
        async for _ in session.map(prompts, download_to=tmp_path, image_size=TINY, concurrency=100):
            seen += 1
            if seen == 20:
                break
        await opened.settled(within=1.0)  # the session is still open: only the batch has gone
        await assert_server_goes_quiet(server)
        assert server.stats.jobs_created <= 20 + 100
        assert (await session.generate("still usable", image_size=TINY, sync_mode=True)).images
    await watch.settled(within=1.0)
    assert part_files(tmp_path) == []


async def test_breaking_out_of_a_held_batch_closed_with_aclosing(
    server: ThreadedServer, tmp_path: Path, task_watch: Any
) -> None:
    watch = task_watch()
    async with session_for(server) as session:
        opened = task_watch()  # the open session's own task is not a leak
        batch = session.map(map(str, range(500)), download_to=tmp_path, image_size=TINY)
        async with aclosing(batch):  # type: ignore[type-var]
            async for outcome in batch:
                assert outcome.ok
                break
        await opened.settled(within=1.0)
        await assert_server_goes_quiet(server)
    await watch.settled(within=1.0)  # closed: the session's own task has gone too
    assert part_files(tmp_path) == []


async def test_a_cancel_scope_around_the_consumer(
    server: ThreadedServer, tmp_path: Path, task_watch: Any
) -> None:
    watch = task_watch()
    async with session_for(server) as session:
        opened = task_watch()  # the open session's own task is not a leak
        received = 0
        with anyio.move_on_after(0.7) as scope:
            async for _ in session.map(map(str, range(500)), download_to=tmp_path, image_size=TINY):
                received += 1
        assert scope.cancelled_caught
        assert received < 500
        await opened.settled(within=1.0)
        await assert_server_goes_quiet(server)
    await watch.settled(within=1.0)
    assert part_files(tmp_path) == []


async def test_cancelling_the_consuming_task(
    server: ThreadedServer, tmp_path: Path, task_watch: Any
) -> None:
    watch = task_watch()
    async with session_for(server) as session:
        opened = task_watch()  # the open session's own task is not a leak

        async def consume() -> int:
            count = 0
            async for _ in session.map(map(str, range(500)), download_to=tmp_path, image_size=TINY):
                count += 1
            return count

        consumer = asyncio.ensure_future(consume())
        await anyio.sleep(0.7)
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        await opened.settled(within=1.0)
        await assert_server_goes_quiet(server)
    await watch.settled(within=1.0)
    assert part_files(tmp_path) == []


async def test_cancelling_single_handles(server: ThreadedServer, task_watch: Any) -> None:
    watch = task_watch()
    server.controls.set_latency(30)
    async with session_for(server) as session:
        opened = task_watch()  # the open session's own task is not a leak
        handles = [await session.submit(f"slow {i}", image_size=TINY) for i in range(20)]
        await anyio.sleep(0.1)  # their pollers are running
        for handle in handles:
            handle.cancel()
            handle.cancel()  # idempotent
        for handle in handles:
            assert handle.done()
            with pytest.raises(ra.JobCancelled, match="cancelled by the caller"):
                await handle
            with pytest.raises(ra.JobCancelled):
                await handle.wait(timeout=0.01)
            assert [u.status async for u in handle.updates()] == [ra.JobStatus.PROCESSING]
        await opened.settled(within=1.0)
        await assert_server_goes_quiet(server)
        # the jobs live on at the server: a handle can re-attach, and be cancelled again
        again = session.job(handles[0].request_id)
        await anyio.sleep(0.05)
        again.cancel()
        await opened.settled(within=1.0)
    await watch.settled(within=1.0)
    assert server.stats.jobs_created == 20


async def test_a_timed_out_wait_does_not_stop_the_job(server: ThreadedServer) -> None:
    async with session_for(server) as session:
        handle = await session.submit("short wait", image_size=TINY)
        with pytest.raises(ra.JobTimeout):
            await handle.wait(timeout=0.01)
        assert not handle.done()
        with anyio.fail_after(5):
            assert (await handle).images


async def test_a_handle_cancelled_at_once_sends_no_status_request(server: ThreadedServer) -> None:
    async with session_for(server) as session:
        handle = await session.submit("cancel me now", image_size=TINY)
        handle.cancel()
        await anyio.sleep(0.3)
    assert server.stats.status_calls == 0


async def test_cancelling_a_reattached_handle_frees_its_job_slot(server: ThreadedServer) -> None:
    server.controls.set_latency(0)
    async with session_for(server, limits=ra.Limits(jobs=1)) as session:
        first = await session.generate("first", image_size=TINY, sync_mode=True)
        session.job(first.request_id).cancel()
        await anyio.sleep(0.1)  # the re-attached handle's poller starts, and finds it cancelled
        with anyio.fail_after(3):
            await session.generate("second", image_size=TINY, sync_mode=True)


class BodyError(Exception):
    """Raised by a test inside ``async with Session()``."""


async def test_an_error_in_the_session_body_propagates_as_itself(
    server: ThreadedServer, tmp_path: Path, task_watch: Any
) -> None:
    watch = task_watch()
    handles: list[ra.JobHandle] = []
    with pytest.raises(BodyError) as caught:  # noqa: PT012 - the error must cross the session
        async with session_for(server) as session:
            handles += [await session.submit(f"job {i}", image_size=TINY) for i in range(10)]
            async for _ in session.map(map(str, range(100)), download_to=tmp_path, image_size=TINY):
                raise BodyError("boom")
    assert type(caught.value) is BodyError  # not an ExceptionGroup
    await watch.settled(within=1.0)
    await assert_server_goes_quiet(server)
    assert all(h.done() for h in handles)
    assert part_files(tmp_path) == []


async def test_leaving_the_session_with_jobs_and_downloads_running(
    tmp_path: Path, task_watch: Any, no_resource_warnings: Callable[[], None]
) -> None:
    watch = task_watch()
    config = ServerConfig(api_key=KEY, latency=0.05, min_image_bytes=BIG_IMAGE)
    with ThreadedServer(config) as server:
        async with session_for(server, limits=ra.Limits(downloads=4)) as session:
            server.controls.set_latency(30)
            running = [await session.submit(f"running {i}", image_size=TINY) for i in range(30)]
            server.controls.set_latency(0)
            done = await session.generate("big images", num_images=4, image_size=TINY)

            async def download() -> None:
                await done.download(tmp_path)

            session._check_open().start_soon(download)  # a download still going at exit
            await anyio.sleep(0.02)
        for handle in running:
            assert isinstance(handle.exception(), ra.JobCancelled)
        await watch.settled(within=1.0)
        await assert_server_goes_quiet(server)
    assert part_files(tmp_path) == []
    no_resource_warnings()


async def test_a_cancelled_large_download_leaves_no_partial_file(
    tmp_path: Path, task_watch: Any, no_resource_warnings: Callable[[], None]
) -> None:
    watch = task_watch()
    config = ServerConfig(api_key=KEY, min_image_bytes=BIG_IMAGE)
    with ThreadedServer(config) as server:
        async with session_for(server) as session:
            opened = task_watch()  # the open session's own task is not a leak
            result = await session.generate("big", num_images=3, image_size=TINY, sync_mode=True)
            for delay in (0.005, 0.02, 0.05):
                with anyio.move_on_after(delay):
                    await result.download(tmp_path / str(delay))
                assert part_files(tmp_path) == []
            # a batch cancelled while its downloads are spilling to disk
            with anyio.move_on_after(0.3):
                async for _ in session.map(
                    map(str, range(20)),
                    num_images=2,
                    download_to=tmp_path / "batch",
                    image_size=TINY,
                    sync_mode=True,
                ):
                    pass
            await opened.settled(within=1.0)
            paths = await result.download(tmp_path / "final")  # and it still works afterwards
        await watch.settled(within=1.0)
    assert [Path(p).stat().st_size for p in paths] == [BIG_IMAGE] * 3
    assert part_files(tmp_path) == []
    no_resource_warnings()


def test_cleanup_under_asyncio_debug_mode(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, no_resource_warnings: Callable[[], None]
) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncio")
    leftover: list[str] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        assert loop.get_debug()
        before = asyncio.all_tasks()
        config = ServerConfig(api_key=KEY, latency=0.2, latency_jitter=0.1)
        with ThreadedServer(config) as server:
            try:
                async with session_for(server) as session:
                    handle = await session.submit("cancelled", image_size=TINY)
                    handle.cancel()
                    async for _ in session.map(
                        map(str, range(100)), download_to=tmp_path, image_size=TINY
                    ):
                        break
                    with anyio.move_on_after(0.3):
                        async for _ in session.map(
                            map(str, range(100, 200)), download_to=tmp_path, image_size=TINY
                        ):
                            pass
                    result = await session.generate("completes", image_size=TINY)
                    await result.download(tmp_path)
                    await session.submit("left running", image_size=TINY)
                    raise BodyError("leave with a job running")
            except BodyError:
                pass
            deadline = loop.time() + 1
            while asyncio.all_tasks() - before - {asyncio.current_task()}:
                if loop.time() > deadline:
                    leftover.extend(map(repr, asyncio.all_tasks() - before))
                    break
                await asyncio.sleep(0.01)

    asyncio.run(scenario(), debug=True)
    assert leftover == []
    assert part_files(tmp_path) == []
    problems = [
        r.getMessage() for r in caplog.records if r.name == "asyncio" and r.levelno >= logging.ERROR
    ]
    assert problems == []  # no "Task was destroyed but it is pending", unclosed sessions, ...
    no_resource_warnings()
