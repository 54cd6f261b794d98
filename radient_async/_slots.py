"""``Slots``: a small FIFO semaphore for the session's shared caps (jobs, requests, downloads).

anyio's ``CapacityLimiter`` tracks borrowers and always checkpoints; the session acquires a slot
several times per job, so this one takes the free path without awaiting anything, and hands a
released slot straight to the longest waiter (urgent ones first), which keeps the caps fair
under load. A waiter waits on a plain asyncio future (sessions run on asyncio): no event object,
no lookup of the running async library.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from types import TracebackType

__all__ = ["Slots"]


class Slots:
    """At most ``total`` holders at a time; waiters are served first come, first served."""

    __slots__ = ("_free", "_urgent", "_waiters", "total")

    def __init__(self, total: int) -> None:
        self.total = total
        self._free = total
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._urgent: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def in_use(self) -> int:
        """How many slots are held right now."""
        return self.total - self._free

    def try_acquire(self, urgent: bool = False) -> bool:
        """Take a slot if one is free and nobody who comes first is waiting; never waits."""
        if self._free > 0 and not self._urgent and (urgent or not self._waiters):
            self._free -= 1
            return True
        return False

    async def acquire(self, timeout: float | None = None, *, urgent: bool = False) -> None:
        """Take a slot, waiting for one (at most ``timeout`` seconds: ``TimeoutError``).

        ``urgent`` waiters are served before the others (submits before status polls: a job
        not yet submitted is not being worked on at all).
        """
        if self.try_acquire(urgent):
            return
        queue = self._urgent if urgent else self._waiters
        loop = asyncio.get_running_loop()
        granted: asyncio.Future[None] = loop.create_future()
        queue.append(granted)
        # A plain timer on the future, not a cancel scope: ~10,000 submits may queue at once.
        timer = None if timeout is None else loop.call_later(timeout, _expire, granted)
        try:
            await granted
        except BaseException:
            if granted.done() and not granted.cancelled() and granted.exception() is None:
                self.release()  # we were handed a slot as we were cancelled: pass it on
            else:  # ``release`` may already have dropped it, cancelled, from the queue
                with contextlib.suppress(ValueError):
                    queue.remove(granted)
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def release(self) -> None:
        """Give a slot back, directly to the first (urgent, then other) waiter if there is one.

        A waiter whose task was cancelled has a cancelled future and is passed over.
        """
        for queue in (self._urgent, self._waiters):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self._free += 1

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _expire(granted: asyncio.Future[None]) -> None:
    """A waiter's time is up: it raises ``TimeoutError``, unless it was just served."""
    if not granted.done():
        granted.set_exception(TimeoutError("no free slot in time"))
