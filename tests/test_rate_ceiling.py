"""``Limits(requests_per_second=...)``: a hard ceiling under the adaptive rate (a budget share)."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

import radient_async as ra
from radient_async._clock import Clock
from radient_async._ratelimit import AimdState
from radient_async.server import LocalServer, ServerConfig

pytestmark = pytest.mark.anyio

KEY = "sk-rate-ceiling-11aa"


class VirtualClock(Clock):
    """Time that moves only when the SDK sleeps; a sleep costs no real time."""

    def __init__(self) -> None:
        self.time = 1000.0

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.time += max(0.0, seconds)
        await anyio.lowlevel.checkpoint()


def test_the_ceiling_spaces_sends_while_unthrottled() -> None:
    state = AimdState(cap=4.0)
    assert state.reserve(0.0) == 0.0
    assert state.reserve(0.0) == pytest.approx(0.25)
    assert state.reserve(0.25) == 0.0
    assert state.pace() == 4.0


def test_the_adaptive_rate_stays_under_the_ceiling() -> None:
    state = AimdState(cap=4.0, rate=50.0)
    assert state.pace() == 4.0
    state.rate = 2.0  # cut below the ceiling by 429s: the lower rate rules
    assert state.pace() == 2.0


def test_without_a_ceiling_nothing_changes() -> None:
    state = AimdState()
    assert [state.reserve(0.0) for _ in range(100)] == [0.0] * 100


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan"), "5", True])
def test_a_bad_ceiling_is_a_configuration_error(bad: object) -> None:
    with pytest.raises(ra.ConfigurationError, match=r"Limits\.requests_per_second"):
        ra.Limits(requests_per_second=bad)  # type: ignore[arg-type]


async def test_a_session_sends_no_faster_than_its_ceiling() -> None:
    clock = VirtualClock()
    async with LocalServer(ServerConfig(api_key=KEY)) as server:
        limits = ra.Limits(requests_per_second=10)
        async with ra.Session(KEY, server.base_url, limits=limits, clock=clock) as session:
            started = clock.now()
            for _ in range(30):
                await session.providers()
            elapsed = clock.now() - started
        assert server.stats.provider_calls == 30
    assert elapsed == pytest.approx(2.9)  # 29 gaps of 1/10 s between 30 sends
