"""The clock the SDK's timing runs on: ``now()`` and ``sleep()``, injectable for virtual time.

Every deadline, backoff, poll schedule and rate-limit wait reads this clock, so tests can drive a
session in virtual time (``anyio``'s loop clock is not used directly anywhere else).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable

__all__ = ["SYSTEM_CLOCK", "Clock"]


class Clock:
    """Monotonic seconds, an async sleep, and a sleep that can be woken (``until``); subclass
    ``now`` and ``sleep`` to run on virtual time (and ``until``, for it to wake early there)."""

    __slots__ = ()

    # Seconds on a monotonic clock: ``time.monotonic`` itself, read several times per job, so
    # no Python frame in between (a subclass overrides it with a method).
    now = staticmethod(time.monotonic)

    def sleep(self, seconds: float) -> Awaitable[None]:
        """Wait ``seconds`` (0 or less: a bare checkpoint); a subclass may be ``async def``.

        asyncio's own sleep, handed back as it is: sessions run on asyncio, and each of
        thousands of sleeping jobs would hold a coroutine more per wrapper (anyio's, or an
        ``async def`` here).
        """
        return asyncio.sleep(max(0.0, seconds))

    async def until(self, woken: asyncio.Future[bool], seconds: float) -> bool:
        """Wait for ``woken`` (set True by whoever wakes the waiter) at most ``seconds``: its
        result, or False on time.

        A timer on the future, not a cancel scope around a sleep: thousands of jobs wait so at
        once, and cancelling a scope costs anyio a repr of its task. A subclass that replaced
        ``sleep`` sleeps the whole time in its own clock instead, then says if it was woken.
        """
        if type(self).sleep is not Clock.sleep:
            await self.sleep(seconds)
            return woken.done() and not woken.cancelled() and woken.result()
        timer = asyncio.get_running_loop().call_later(max(0.0, seconds), _ring, woken)
        try:
            return await woken
        finally:
            timer.cancel()


def _ring(woken: asyncio.Future[bool]) -> None:
    """A waiter's time is up: it wakes with False, unless it was just woken."""
    if not woken.done():
        woken.set_result(False)


SYSTEM_CLOCK = Clock()
