"""session.map: lazy, bounded, ordered or not, fail-fast, resumable, with progress and AIMD."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import radient_async as ra
from radient_async._file_worker import FileWorker
from radient_async._progress import BatchStats
from radient_async.server import ServerConfig, ThreadedServer
from radient_async.testing import FAST_POLL

pytestmark = pytest.mark.anyio

KEY = "batch-key"
TINY = (32, 32)


@pytest.fixture
def radient_server_config() -> ServerConfig:
    return ServerConfig(api_key=KEY, latency=0.02, latency_jitter=0.02, seed=5)


def open_session(server: ThreadedServer, **kwargs: object) -> ra.Session:
    retry = ra.RetryPolicy(initial_backoff=0.01, max_backoff=0.05, max_retries=6)
    options: dict[str, object] = {"poll": FAST_POLL, "retry": retry}
    options.update(kwargs)
    return ra.Session(KEY, server.base_url, **options)  # type: ignore[arg-type]


async def test_map_yields_one_outcome_per_item_with_files(
    radient_server: ThreadedServer, tmp_path: Path
) -> None:
    prompts = [f"prompt {i}" for i in range(20)]
    async with open_session(radient_server) as session:
        outcomes = [
            o
            async for o in session.map(prompts, download_to=tmp_path, image_size=TINY, num_images=2)
        ]
    assert sorted(o.index for o in outcomes) == list(range(20))
    assert all(o.ok for o in outcomes)
    assert all(len(o.paths) == 2 for o in outcomes)
    assert {o.item for o in outcomes} == set(prompts)
    assert len(list(tmp_path.glob("*.png"))) == 40
    assert radient_server.stats.jobs_created == 20


async def test_ordered_map_yields_in_input_order(radient_server: ThreadedServer) -> None:
    async with open_session(radient_server) as session:
        indexes = [
            o.index async for o in session.map(map(str, range(30)), ordered=True, image_size=TINY)
        ]
    assert indexes == list(range(30))


async def test_one_failure_does_not_stop_the_batch(radient_server: ThreadedServer) -> None:
    items = ["fine", "please [fail]", "fine too", "", {"prompt": "mapping item", "seed": 3}]
    async with open_session(radient_server) as session:
        outcomes = {o.index: o async for o in session.map(items, image_size=TINY)}
    assert outcomes[0].ok
    assert outcomes[2].ok
    assert outcomes[4].ok
    assert isinstance(outcomes[1].error, ra.JobFailed)
    assert isinstance(outcomes[3].error, ra.ValidationError)
    with pytest.raises(ra.JobFailed):
        outcomes[1].unwrap()
    assert radient_server.stats.jobs_created == 4


async def test_fail_fast_raises_the_first_error_and_cancels_the_rest(
    radient_server: ThreadedServer,
) -> None:
    radient_server.controls.set_latency(0.5)
    items = ["[fail] now"] + [f"slow {i}" for i in range(10)]
    async with open_session(radient_server) as session:
        radient_server.controls.fail_next(1, error="first one fails")
        with pytest.raises(ra.JobFailed):
            async for _ in session.map(items, fail_fast=True, image_size=TINY):
                pass


async def test_input_is_consumed_lazily_even_when_endless(radient_server: ThreadedServer) -> None:
    pulled = 0

    def endless() -> Iterator[str]:
        nonlocal pulled
        for i in itertools.count():
            pulled += 1
            yield f"endless {i}"

    async with open_session(radient_server) as session:
        seen = 0
        async for _ in session.map(endless(), concurrency=4, image_size=TINY):
            seen += 1
            if seen == 10:
                break
    # consumed, plus the concurrency in flight, plus one pulled as the 10th outcome was delivered
    assert pulled <= 10 + 4 + 1


async def test_a_finished_item_ends_its_task_without_waiting_for_the_consumer(
    radient_server: ThreadedServer,
) -> None:
    # The consumer holds back after its first outcome. The other items finish meanwhile: their
    # tasks end with their outcomes queued (each still holding its slot, so no more are pulled),
    # instead of each task waiting on an event of its own until the consumer comes for it.
    def item_tasks() -> int:
        return sum(t.get_name().endswith("_Run.work") for t in asyncio.all_tasks())

    pulled = 0

    def prompts() -> Iterator[str]:
        nonlocal pulled
        for i in range(24):
            pulled += 1
            yield f"queued {i}"

    async with open_session(radient_server) as session:
        outcomes = session.map(prompts(), concurrency=8, sync_mode=True, image_size=TINY)
        first = await outcomes.__anext__()
        with anyio.fail_after(10):  # a bound on a stuck run, not a timing: it ends in ~0.1 s
            while item_tasks() or radient_server.stats.jobs_created < 9:
                await anyio.sleep(0.01)
        assert pulled == 9  # the first item's slot came back when it was taken: one more pulled
        rest = [o async for o in outcomes]
    assert sorted(o.index for o in [first, *rest]) == list(range(24))


async def test_free_capacity_starts_items_in_runs_not_one_loop_turn_each(
    radient_server: ThreadedServer,
) -> None:
    # A ticker counts event-loop turns; each item records the count as it is pulled. A window
    # of 256 starts in about 64 turns (4 items a turn), not one turn per item (10,000 turns for
    # a 10,000-item batch), and still yields: other tasks are never starved for long.
    turns = 0
    seen_at: list[int] = []

    async def ticker() -> None:
        nonlocal turns
        while True:
            await anyio.sleep(0)
            turns += 1

    def items() -> Iterator[str]:
        for i in range(256):
            seen_at.append(turns)
            yield f"item {i}"

    async with open_session(radient_server) as session, anyio.create_task_group() as group:
        group.start_soon(ticker)
        outcomes = [o async for o in session.map(items(), concurrency=256, image_size=TINY)]
        group.cancel_scope.cancel()
    assert len(outcomes) == 256
    assert 256 // 4 <= len(set(seen_at)) <= 256 // 4 + 1


async def test_async_iterable_input(radient_server: ThreadedServer) -> None:
    async def prompts() -> AsyncIterator[str]:
        for i in range(5):
            await anyio.sleep(0)
            yield f"async {i}"

    async with open_session(radient_server) as session:
        outcomes = [o async for o in session.map(prompts(), image_size=TINY)]
    assert len(outcomes) == 5
    assert all(o.ok for o in outcomes)


async def test_a_failing_input_iterable_is_reported(radient_server: ThreadedServer) -> None:
    def broken() -> Iterator[str]:
        yield "one"
        raise RuntimeError("disk on fire")

    async with open_session(radient_server) as session:
        with pytest.raises(ra.ValidationError, match="disk on fire"):
            async for _ in session.map(broken(), image_size=TINY):
                pass


async def test_jobs_in_flight_are_capped_by_session_limits(radient_server: ThreadedServer) -> None:
    radient_server.controls.set_latency(0.2)
    peak = 0

    def watch(stats: BatchStats) -> None:
        nonlocal peak
        peak = max(peak, stats.running)

    async with open_session(radient_server, limits=ra.Limits(jobs=5)) as session:
        outcomes = [
            o async for o in session.map(map(str, range(25)), progress=watch, image_size=TINY)
        ]
    assert len(outcomes) == 25
    assert 1 <= peak <= 5


async def test_manifest_resume_never_generates_a_completed_item_twice(
    radient_server: ThreadedServer, tmp_path: Path
) -> None:
    manifest = tmp_path / "batch.jsonl"
    prompts = [f"resumable {i}" for i in range(12)]
    async with open_session(radient_server) as session:
        done = 0
        async for _ in session.map(
            prompts, manifest=manifest, download_to=tmp_path / "out", concurrency=3, image_size=TINY
        ):
            done += 1
            if done == 5:
                break  # a crash, a Ctrl-C, a kernel restart
    created_first = radient_server.stats.jobs_created
    assert created_first < 12
    async with open_session(radient_server) as session:
        outcomes = [
            o
            async for o in session.map(
                prompts, manifest=manifest, download_to=tmp_path / "out", image_size=TINY
            )
        ]
    assert len(outcomes) == 12
    assert all(o.ok for o in outcomes)
    assert sum(o.resumed for o in outcomes) >= 5
    assert radient_server.stats.jobs_created == 12  # every item generated exactly once overall
    assert len(list((tmp_path / "out").glob("*.png"))) == 12
    assert not list((tmp_path / "out").glob(".*.part"))


async def test_manifest_reattaches_to_submitted_jobs(
    radient_server: ThreadedServer, tmp_path: Path
) -> None:
    radient_server.controls.set_latency(0.4)
    manifest = tmp_path / "inflight.jsonl"
    async with open_session(radient_server) as session:
        with anyio.move_on_after(0.2):
            async for _ in session.map(["in flight"], manifest=manifest, image_size=TINY):
                pass
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert lines[-1]["status"] == "submitted"
    async with open_session(radient_server) as session:
        [outcome] = [
            o async for o in session.map(["in flight"], manifest=manifest, image_size=TINY)
        ]
    assert outcome.ok
    assert outcome.request_id == lines[-1]["request_id"]
    assert radient_server.stats.jobs_created == 1


async def test_torn_last_line_is_tolerated(radient_server: ThreadedServer, tmp_path: Path) -> None:
    manifest = tmp_path / "torn.jsonl"
    async with open_session(radient_server) as session:
        [o async for o in session.map(["a", "b"], manifest=manifest, image_size=TINY)]
    with manifest.open("a") as handle:
        handle.write('{"index": 1, "fp": "abc", "sta')  # the crash happened mid-write
    async with open_session(radient_server) as session:
        outcomes = [o async for o in session.map(["a", "b"], manifest=manifest, image_size=TINY)]
    assert all(o.resumed for o in outcomes)
    assert radient_server.stats.jobs_created == 2
    assert all(json.loads(line) for line in manifest.read_text().splitlines())


async def test_manifest_for_different_inputs_is_refused(
    radient_server: ThreadedServer, tmp_path: Path
) -> None:
    manifest = tmp_path / "m.jsonl"
    async with open_session(radient_server) as session:
        [o async for o in session.map(["one", "two"], manifest=manifest, image_size=TINY)]
        with pytest.raises(ra.ValidationError, match="differs"):
            async for _ in session.map(["one", "changed"], manifest=manifest, image_size=TINY):
                pass
    not_a_manifest = tmp_path / "notes.txt"
    not_a_manifest.write_text("hello\n")
    async with open_session(radient_server) as session:
        with pytest.raises(ra.ValidationError, match="manifest"):
            async for _ in session.map(["x"], manifest=not_a_manifest):
                pass


async def test_progress_callback_counts(radient_server: ThreadedServer, tmp_path: Path) -> None:
    snapshots: list[tuple[int, int, int, int]] = []

    def record(stats: BatchStats) -> None:
        snapshots.append((stats.submitted, stats.completed, stats.failed, stats.images))

    async with open_session(radient_server) as session:
        [
            o
            async for o in session.map(
                ["a", "b [fail]", "c"], download_to=tmp_path, progress=record, image_size=TINY
            )
        ]
    submitted, completed, failed, images = snapshots[-1]
    assert (submitted, completed, failed, images) == (3, 2, 1, 2)


@pytest.mark.parametrize("kind", ["tqdm", "rich"])
async def test_progress_adapters_run(
    radient_server: ThreadedServer, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async with open_session(radient_server) as session:
        outcomes = [o async for o in session.map(["a", "b"], progress=kind, image_size=TINY)]
    assert len(outcomes) == 2
    captured = capsys.readouterr()
    assert "2/2" in captured.err + captured.out


async def test_aimd_converges_to_the_servers_rate_without_a_storm(tmp_path: Path) -> None:
    config = ServerConfig(api_key=KEY, rate_limit=100, seed=1)
    with ThreadedServer(config) as server:
        async with open_session(server, limits=ra.Limits(requests=64, jobs=64)) as session:
            started = anyio.current_time()
            outcomes = [
                o async for o in session.map(map(str, range(300)), sync_mode=True, image_size=TINY)
            ]
            elapsed = anyio.current_time() - started
        total = sum(server.stats.requests.values())
        limited = server.stats.rate_limited
    assert all(o.ok for o in outcomes)
    assert server.stats.jobs_created == 300
    assert limited / total < 0.2, (limited, total)
    assert 300 / elapsed > 40


async def test_resume_accepts_files_saved_before_the_interruption(
    radient_server: ThreadedServer, tmp_path: Path
) -> None:
    """Files saved but not yet recorded as completed must not make the rerun fail."""
    manifest = tmp_path / "m.jsonl"
    out = tmp_path / "out"
    async with open_session(radient_server) as session:
        [
            o
            async for o in session.map(
                ["saved"], manifest=manifest, download_to=out, image_size=TINY
            )
        ]
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join(lines[:-1]) + "\n")  # lose the "completed" record
    async with open_session(radient_server) as session:
        [outcome] = [
            o
            async for o in session.map(
                ["saved"], manifest=manifest, download_to=out, image_size=TINY
            )
        ]
    assert outcome.ok, outcome.error
    assert len(list(out.glob("*.png"))) == 1
    assert radient_server.stats.jobs_created == 1


async def test_more_concurrency_than_the_session_allows_is_refused_before_starting(
    radient_server: ThreadedServer,
) -> None:
    radient_server.stats.reset()
    async with open_session(radient_server, limits=ra.Limits(jobs=5)) as session:
        with pytest.raises(ra.ValidationError, match=r"Limits\(jobs=6\) or more"):
            async for _ in session.map(["a", "b"], concurrency=6):
                pass
    assert radient_server.stats.jobs_created == 0


def test_the_default_job_limit_fits_a_batch_of_ten_thousand() -> None:
    assert ra.Limits().jobs >= 10_000


async def test_a_batch_download_costs_one_thread_hop_per_file(
    radient_server: ThreadedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folder is checked once per batch and sizes come from the download, not a ``stat``.

    Every hop counts: the session's file worker (a commit per file) and anyio's threads (the
    folder check and the sweep of leftovers, once per batch).
    """
    hops: list[str] = []
    real_anyio, real_worker = anyio.to_thread.run_sync, FileWorker.run

    async def through_anyio(func: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(func, "__name__", repr(func)))
        return await real_anyio(func, *args, **kwargs)

    async def through_worker(worker: FileWorker, func: Any) -> Any:
        hops.append(f"worker: {getattr(func, '__name__', repr(func))}")
        return await real_worker(worker, func)

    monkeypatch.setattr(anyio.to_thread, "run_sync", through_anyio)
    monkeypatch.setattr(FileWorker, "run", through_worker)
    async with open_session(radient_server) as session:
        outcomes = [o async for o in session.map(["x"] * 20, download_to=tmp_path)]
    assert all(o.ok for o in outcomes)
    assert len(list(tmp_path.iterdir())) == 20
    assert sum(hop.startswith("worker: ") for hop in hops) == 20, hops  # one commit per file
    assert len(hops) <= 20 + 3, hops  # and the folder check and sweep once
