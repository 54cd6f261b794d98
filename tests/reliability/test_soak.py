"""Soak under faults: 1,000 jobs through 20% injected faults of every kind, and a rate limit.

The oracle for "byte-identical" is independent of the faulty run: the server's renderer is
deterministic in (provider, prompt, seed, index, size), so a second, fault-free server answering
the same requests renders the very bytes the faulty server rendered for each job.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage

import radient_async as ra
from radient_async.server import FAULT_KINDS, FaultConfig, ServerConfig, ThreadedServer

pytestmark = pytest.mark.anyio

KEY = "sk-soak-6b0e2f9a41c7d358"
TINY = (32, 32)
SOAK_ITEMS = 1000
POLL = ra.PollPolicy(first_delay=0.01, min_interval=0.01, max_interval=0.05)  # 600 s deadline
SEEDS = (11, 12, 13, 14, 15)


def session_for(base_url: str, **options: Any) -> ra.Session:
    """The default retry policy, limits and timeouts; only the poll schedule is quickened."""
    return ra.Session(KEY, base_url, poll=POLL, **options)


def part_files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.name.endswith(".part")]


@pytest.fixture(params=SEEDS, ids=lambda seed: f"seed{seed}")
def radient_server_config(request: pytest.FixtureRequest) -> ServerConfig:
    """20% of requests to every endpoint fail, with every fault kind, over small latency."""
    faults = FaultConfig(rate=0.2, retry_after=0.01, slow_delay=0.02)
    return ServerConfig(
        api_key=KEY, latency=0.02, latency_jitter=0.02, faults=faults, seed=request.param
    )


def soak_items(count: int) -> list[dict[str, Any]]:
    """Async and sync jobs interleaved, 1-3 images each, explicit seeds (so renders are known)."""
    return [
        {
            "prompt": f"soak item {i}",
            "num_images": 1 + i % 3,
            "sync_mode": i % 5 in (1, 3),
            "seed": 10_000 + i,
        }
        for i in range(count)
    ]


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def expected_digests(items: list[dict[str, Any]]) -> dict[tuple[int, int], str]:
    """What a fault-free server renders for each (item, image index)."""
    expected: dict[tuple[int, int], str] = {}
    with ThreadedServer(ServerConfig(api_key=KEY)) as clean:
        async with session_for(clean.base_url) as session:
            async for outcome in session.map(
                [{**item, "sync_mode": True} for item in items], image_size=TINY
            ):
                result = outcome.unwrap()
                for image in result.images:
                    expected[outcome.index, image.index] = digest(await image.read())
    return expected


async def test_1000_jobs_under_20_percent_faults_all_complete_byte_identical(
    radient_server: ThreadedServer, tmp_path: Path
) -> None:
    items = soak_items(SOAK_ITEMS)
    async with session_for(radient_server.base_url) as session:
        outcomes = [
            outcome async for outcome in session.map(items, download_to=tmp_path, image_size=TINY)
        ]
    stats = radient_server.stats

    failed = [(o.index, repr(o.error)) for o in outcomes if not o.ok]
    assert not failed, failed[:5]
    assert sorted(o.index for o in outcomes) == list(range(SOAK_ITEMS))
    # exactly one job per submitted item, however many times a submit was retried
    assert stats.jobs_created == SOAK_ITEMS
    assert len({o.request_id for o in outcomes}) == SOAK_ITEMS
    # the faults really happened, every kind of them, on a large share of requests
    assert set(stats.faults) == set(FAULT_KINDS), stats.faults
    assert sum(stats.faults.values()) >= 0.1 * sum(stats.requests.values())

    expected = await expected_digests(items)
    files = sorted(p for p in tmp_path.iterdir())
    assert len(files) == sum(item["num_images"] for item in items) == len(expected)
    for outcome in outcomes:
        assert outcome.result is not None
        assert len(outcome.paths) == items[outcome.index]["num_images"]
        for image, path in zip(outcome.result.images, outcome.paths, strict=True):
            saved = Path(path)
            assert saved.parent == tmp_path
            assert saved.name == image.filename
            assert digest(saved.read_bytes()) == expected[outcome.index, image.index], path
    with PILImage.open(files[0]) as picture:
        assert picture.size == TINY
    assert part_files(tmp_path) == []


async def test_200_jobs_under_a_400_rps_limit(tmp_path: Path) -> None:
    config = ServerConfig(api_key=KEY, rate_limit=400, latency=0.02, seed=5)
    items = soak_items(200)
    with ThreadedServer(config) as server:
        started = time.monotonic()
        async with session_for(server.base_url) as session:
            outcomes = [
                outcome
                async for outcome in session.map(items, download_to=tmp_path, image_size=TINY)
            ]
        elapsed = time.monotonic() - started
        stats = server.stats
    assert [o.error for o in outcomes if not o.ok] == []
    assert stats.jobs_created == 200
    assert len(list(tmp_path.iterdir())) == sum(item["num_images"] for item in items)
    assert part_files(tmp_path) == []
    # the limit was hit, and the session backed off instead of storming: few 429s per request
    api_requests = sum(n for name, n in stats.requests.items() if name != "files")
    assert stats.rate_limited < api_requests
    assert elapsed < 20


# -- scattered 429s must not collapse throughput ---------------------------------------------------


def served_in(share: float, *, demand: float = 1000.0, seconds: float = 5.0) -> float:
    """Simulated seconds the session's rate gate takes to send ``demand * seconds`` requests
    offered at ``demand``/s when a random ``share`` of answers (seeded) are 429s, retried after
    the 10 ms the server asks for. Pure: drives ``AimdState`` with simulated time.
    """
    import heapq
    import random

    from radient_async._ratelimit import AimdState

    state, rng = AimdState(), random.Random(7)
    events = [(i / demand, 0, i) for i in range(int(demand * seconds))]  # (time, kind, request)
    heapq.heapify(events)
    last = 0.0
    while events:
        now, kind, request = heapq.heappop(events)
        if kind == 0:  # the request asks the gate, then is answered 5 ms after it is sent
            heapq.heappush(events, (now + state.reserve(now) + 0.005, 1, request))
        elif rng.random() < share:
            state.on_throttled(now, 0.01)
            heapq.heappush(events, (now + 0.01, 0, request))
        else:
            state.on_success(now)
            last = now
    return last


@pytest.mark.parametrize("share", [0.01, 0.03])
def test_scattered_429s_do_not_collapse_throughput(share: float) -> None:
    baseline = served_in(0.0)
    assert baseline == pytest.approx(5.0, abs=0.05)
    assert served_in(share) < 1.25 * baseline
