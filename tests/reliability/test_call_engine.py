"""The call engine under the issue's scenarios, over loopback, with the default retry settings.

Retries bounded by deadlines (not a small count), a shared retry budget, a rate limiter that can
neither collapse nor brick, poll failures that never end a job early, an item's failure staying the
item's, slots that always come back, and reruns that never generate twice.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import radient_async as ra
from radient_async.server import ServerConfig, ThreadedServer
from radient_async.testing import FAST_POLL

pytestmark = pytest.mark.anyio

KEY = "engine-key"
TINY = (16, 16)


@pytest.fixture
def radient_server_config() -> ServerConfig:
    return ServerConfig(api_key=KEY, seed=3)


# The default attempt cap and Retry-After handling, with backoff scaled down so a test is quick.
QUICK = ra.RetryPolicy(initial_backoff=0.01, max_backoff=0.1)


def session_for(server: ThreadedServer, **options: Any) -> ra.Session:
    """A session with the default limits and attempt cap; polling and backoff are quickened."""
    options.setdefault("poll", FAST_POLL)
    options.setdefault("retry", QUICK)
    return ra.Session(KEY, server.base_url, **options)


async def test_one_early_429_does_not_break_the_next_burst(radient_server: ThreadedServer) -> None:
    radient_server.controls.inject("429", next_n=1, endpoints="providers", retry_after=0)
    async with session_for(radient_server) as session:
        await session.providers()  # answered 429 first, then retried
        handles = []
        async with anyio.create_task_group() as group:

            async def submit(i: int) -> None:
                handles.append(await session.submit(f"burst {i}", sync_mode=True, image_size=TINY))

            for i in range(200):
                group.start_soon(submit, i)
        assert len(handles) == 200
    assert radient_server.stats.jobs_created == 200
    assert radient_server.stats.faults["429"] == 1


async def test_a_huge_retry_after_fails_only_that_call(radient_server: ThreadedServer) -> None:
    radient_server.controls.inject("429", next_n=1, endpoints="providers", retry_after=3600)
    retry = ra.RetryPolicy(initial_backoff=0.01, max_backoff=0.1, max_retry_after=0.5)
    async with session_for(radient_server, retry=retry) as session:
        with pytest.raises(ra.RateLimitError) as caught:
            await session.providers()
        assert caught.value.retry_after == pytest.approx(3600)
        with anyio.fail_after(5):  # the gate is held no longer than the cap
            assert await session.providers()
            result = await session.generate("after the 429", sync_mode=True, image_size=TINY)
    assert result.images


async def test_transient_faults_on_every_endpoint_lose_nothing(
    radient_server: ThreadedServer, tmp_path: Path
) -> None:
    for kind in ("429", "500", "502", "503", "reset", "truncate"):
        radient_server.controls.inject(kind, rate=0.04, retry_after=0)
    async with session_for(radient_server) as session:
        outcomes = [
            o
            async for o in session.map(
                (f"faulty {i}" for i in range(150)), download_to=tmp_path, image_size=TINY
            )
        ]
    assert [o.error for o in outcomes if not o.ok] == []
    assert radient_server.stats.jobs_created == 150
    assert len(list(tmp_path.glob("*.png"))) == 150
    assert not list(tmp_path.glob(".*"))  # no temporary files left
    assert sum(radient_server.stats.faults.values()) > 0


async def test_a_status_outage_is_ridden_out_within_the_retry_budget(
    radient_server: ThreadedServer,
) -> None:
    jobs = 100
    radient_server.controls.set_latency(0.05)
    async with session_for(radient_server) as session:
        handles = [await session.submit(f"outage {i}", image_size=TINY) for i in range(jobs)]
        radient_server.controls.inject("503", rate=1.0, endpoints="status", retry_after=0)
        before = radient_server.stats.status_calls
        await anyio.sleep(3.0)
        radient_server.controls.clear_faults()
        during = radient_server.stats.status_calls - before
        results = [await h for h in handles]
    assert len(results) == jobs  # every job completed for the user after the outage
    # one look each, the budget's 100 tokens, 10 a second: far below per-job backoff storms
    assert during <= jobs + 100 + 10 * 3 + jobs, during


async def test_poll_failures_never_end_a_job_before_its_deadline(
    radient_server: ThreadedServer,
) -> None:
    radient_server.controls.set_latency(0.05)
    radient_server.controls.inject("500", next_n=30, endpoints="status")
    async with session_for(radient_server) as session:
        result = await session.generate("survives 30 failed polls", image_size=TINY)
    assert result.images
    assert radient_server.stats.faults["500"] == 30


async def test_a_job_deadline_holds_within_a_second(radient_server: ThreadedServer) -> None:
    radient_server.controls.set_latency(60)
    radient_server.controls.inject("slow", rate=1.0, endpoints="status", delay=30)
    async with session_for(radient_server) as session:
        job = await session.submit("never answered", image_size=TINY, timeout=2)
        started = anyio.current_time()
        with pytest.raises(ra.JobTimeout):
            await job
        late = anyio.current_time() - started - 2
    radient_server.controls.clear_faults()
    assert late < 1.0, late


class Exploding(Mapping[str, Any]):
    """A batch item whose fields cannot be read: not a ``RadientError`` inside the batch."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("the item's source is on fire")

    def __iter__(self) -> Iterator[str]:
        return iter(["prompt"])

    def __len__(self) -> int:
        return 1


async def test_an_item_that_raises_anything_fails_alone(radient_server: ThreadedServer) -> None:
    items: list[Any] = ["fine one", Exploding(), "fine two"]
    async with session_for(radient_server) as session:
        outcomes = {o.index: o async for o in session.map(items, image_size=TINY)}
        assert await session.providers()  # the session is still open and well
    assert outcomes[0].ok
    assert outcomes[2].ok
    error = outcomes[1].error
    assert isinstance(error, ra.RadientError)
    assert isinstance(error.__cause__, RuntimeError)


async def test_reattach_then_cancel_gives_the_job_slot_back(
    radient_server: ThreadedServer,
) -> None:
    async with session_for(radient_server, limits=ra.Limits(jobs=1)) as session:
        first = await session.submit("holder", sync_mode=True, image_size=TINY)
        for _ in range(5):
            session.job(first.request_id).cancel()
        with anyio.fail_after(5):
            job = await session.submit("next", image_size=TINY)
            await job


OPERATIONS = st.lists(
    st.sampled_from(["submit", "sync", "attach", "cancel_now", "cancel_later", "deadline"]),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(operations=OPERATIONS)
async def test_every_path_gives_its_job_slot_back(
    radient_server: ThreadedServer, operations: list[str]
) -> None:
    radient_server.controls.set_latency(0.05)
    jobs = 2
    async with session_for(radient_server, limits=ra.Limits(jobs=jobs)) as session:
        known = await session.submit("known", sync_mode=True, image_size=TINY)
        for op in operations:
            with anyio.fail_after(10):
                if op == "submit":
                    await (await session.submit("s", image_size=TINY))
                elif op == "sync":
                    await (await session.submit("y", sync_mode=True, image_size=TINY))
                elif op == "attach":
                    await session.job(known.request_id)
                elif op == "cancel_now":
                    session.job(known.request_id).cancel()
                elif op == "cancel_later":
                    job = await session.submit("c", image_size=TINY)
                    await anyio.sleep(0.02)
                    job.cancel()
                else:
                    job = await session.submit("d", image_size=TINY, timeout=0.01)
                    with pytest.raises(ra.JobTimeout):
                        await job
        with anyio.fail_after(10):  # every slot is free again: `jobs` jobs at once still fit
            held = [await session.submit(f"free {i}", image_size=TINY) for i in range(jobs)]
            for job in held:
                await job


async def test_a_rerun_after_a_status_outage_creates_no_new_jobs(
    radient_server: ThreadedServer, tmp_path: Path
) -> None:
    manifest = tmp_path / "batch.jsonl"
    prompts = [f"blip {i}" for i in range(20)]
    radient_server.controls.set_latency(0.3)
    radient_server.controls.inject("503", rate=1.0, endpoints="status", retry_after=0)
    short = ra.PollPolicy(first_delay=0.01, min_interval=0.01, max_interval=0.1, timeout=1)
    async with session_for(radient_server, poll=short) as session:
        first = [
            o
            async for o in session.map(
                prompts, manifest=manifest, download_to=tmp_path / "out", image_size=TINY
            )
        ]
    assert not any(o.ok for o in first)  # every poll gave up at the job deadline
    radient_server.controls.clear_faults()
    created = radient_server.stats.jobs_created
    async with session_for(radient_server) as session:
        second = [
            o
            async for o in session.map(
                prompts, manifest=manifest, download_to=tmp_path / "out", image_size=TINY
            )
        ]
    assert all(o.ok for o in second)
    assert radient_server.stats.jobs_created == created == 20
    assert len(list((tmp_path / "out").glob("*.png"))) == 20


async def test_a_rerun_after_failed_downloads_only_downloads(
    radient_server: ThreadedServer, tmp_path: Path
) -> None:
    manifest = tmp_path / "batch.jsonl"
    prompts = [f"download {i}" for i in range(10)]
    radient_server.controls.inject("503", rate=1.0, endpoints="files", retry_after=0)
    timeouts = ra.Timeouts(download=0.5)
    async with session_for(radient_server, timeouts=timeouts) as session:
        first = [
            o
            async for o in session.map(
                prompts, manifest=manifest, download_to=tmp_path / "out", image_size=TINY
            )
        ]
    assert all(isinstance(o.error, ra.DownloadError) for o in first)
    radient_server.controls.clear_faults()
    async with session_for(radient_server) as session:
        second = [
            o
            async for o in session.map(
                prompts, manifest=manifest, download_to=tmp_path / "out", image_size=TINY
            )
        ]
    assert all(o.ok for o in second)
    assert not any(o.resubmitted for o in second)
    assert radient_server.stats.jobs_created == 10
    assert len(list((tmp_path / "out").glob("*.png"))) == 10


async def test_a_job_the_server_forgot_is_resubmitted_and_says_so(
    tmp_path: Path,
) -> None:
    manifest = tmp_path / "batch.jsonl"
    prompts = [f"forgotten {i}" for i in range(4)]
    with ThreadedServer(ServerConfig(api_key=KEY, seed=3, latency=0.3)) as radient:
        radient.controls.inject("503", rate=1.0, endpoints="status", retry_after=0)
        short = ra.PollPolicy(first_delay=0.01, min_interval=0.01, max_interval=0.1, timeout=0.5)
        async with session_for(radient, poll=short) as session:
            first = [o async for o in session.map(prompts, manifest=manifest, image_size=TINY)]
        assert not any(o.ok for o in first)
    seen: list[ra.BatchStats] = []
    with ThreadedServer(ServerConfig(api_key=KEY, seed=3)) as fresh:  # knows none of those jobs
        async with session_for(fresh) as session:

            def snapshot(stats: ra.BatchStats) -> None:
                seen.append(copy.copy(stats))  # the sink hands out one live object

            batch = session.map(prompts, manifest=manifest, image_size=TINY, progress=snapshot)
            second = [o async for o in batch]
        assert all(o.ok for o in second)
        assert all(o.resubmitted for o in second)
        assert fresh.stats.jobs_created == 4
    # a lost job and its resubmission are one item in flight, not two
    assert max(stats.running for stats in seen) <= 4
    assert (seen[-1].submitted, seen[-1].completed, seen[-1].running) == (4, 4, 0)
