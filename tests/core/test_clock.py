"""``Clock.until``: a sleep that whoever holds its future can cut short (jobs waiting to learn)."""

from __future__ import annotations

import asyncio

import anyio
import anyio.lowlevel
import pytest

from radient_async._clock import Clock

pytestmark = pytest.mark.anyio


async def test_a_waiter_woken_early_says_so() -> None:
    woken: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(woken.set_result, True)
    with anyio.fail_after(5):  # would sleep 60 s if waking did not work
        assert await Clock().until(woken, 60) is True


async def test_a_waiter_nobody_wakes_gets_false_on_time() -> None:
    woken: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    assert await Clock().until(woken, 0.01) is False
    assert woken.done()


async def test_a_cancelled_waiter_cancels_its_future() -> None:
    loop = asyncio.get_running_loop()
    woken: asyncio.Future[bool] = loop.create_future()
    with anyio.move_on_after(0.01):
        await Clock().until(woken, 60)
    assert woken.cancelled()


class VirtualClock(Clock):
    """Time that moves only when slept through."""

    def __init__(self) -> None:
        self.time = 0.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.time += seconds
        await anyio.lowlevel.checkpoint()


async def test_a_virtual_clock_sleeps_in_its_own_time_then_says_if_woken() -> None:
    clock = VirtualClock()
    woken: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    assert await clock.until(woken, 30) is False
    woken.set_result(True)
    assert await clock.until(woken, 30) is True
    assert clock.slept == [30, 30]
    assert clock.now() == 60
