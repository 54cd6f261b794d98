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
    """Monotonic seconds and an async sleep; subclass both to run on virtual time."""

    __slots__ = ()

    def now(self) -> float:
        """Seconds on a monotonic clock."""
        return time.monotonic()

    def sleep(self, seconds: float) -> Awaitable[None]:
        """Wait ``seconds`` (0 or less: a bare checkpoint); a subclass may be ``async def``.

        asyncio's own sleep, handed back as it is: sessions run on asyncio, and each of
        thousands of sleeping jobs would hold a coroutine more per wrapper (anyio's, or an
        ``async def`` here).
        """
        return asyncio.sleep(max(0.0, seconds))


SYSTEM_CLOCK = Clock()
