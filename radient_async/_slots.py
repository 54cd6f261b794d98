"""``Slots``: a small FIFO semaphore for the session's shared caps (jobs, requests, downloads).

anyio's ``CapacityLimiter`` tracks borrowers and always checkpoints; the session acquires a slot
several times per job, so this one takes the free path without awaiting anything, and hands a
released slot straight to the longest waiter of the first turn (``LEAD``, then ``URGENT``, then
``NORMAL``), which keeps the caps fair under load. A waiter waits on a plain asyncio future
(sessions run on asyncio): no event object, no lookup of the running async library.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from types import TracebackType

__all__ = ["LEAD", "NORMAL", "URGENT", "Slots"]

# Turns, first served first. A plain int each: the hot path compares and indexes them.
LEAD = 0  # the few calls every other job's schedule is learned from (a session's probe polls)
URGENT = 1  # submits: a job not yet submitted is not being worked on at all
NORMAL = 2  # everything else (status polls, downloads)


class Slots:
    """At most ``total`` holders at a time; waiters are served first come, first served."""

    __slots__ = ("_free", "_queues", "total")

    def __init__(self, total: int) -> None:
        self.total = total
        self._free = total
        # One queue of waiters per turn. A free slot and a waiter never coexist: ``release``
        # hands its slot to a waiter when there is one, so a free slot can be taken at once.
        self._queues: tuple[collections.deque[asyncio.Future[None]], ...] = tuple(
            collections.deque() for _ in (LEAD, URGENT, NORMAL)
        )

    @property
    def in_use(self) -> int:
        """How many slots are held right now."""
        return self.total - self._free

    def try_acquire(self) -> bool:
        """Take a slot if one is free (then nobody is waiting for one); never waits."""
        if self._free > 0:
            self._free -= 1
            return True
        return False

    async def acquire(self, timeout: float | None = None, *, turn: int = NORMAL) -> None:
        """Take a slot, waiting for one (at most ``timeout`` seconds: ``TimeoutError``).

        Waiters of an earlier ``turn`` are served first: probe polls, then submits, then the
        rest; each turn first come, first served.
        """
        if self.try_acquire():
            return
        queue = self._queues[turn]
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
        """Give a slot back, directly to the first waiter of the first turn if there is one.

        A waiter whose task was cancelled has a cancelled future and is passed over.
        """
        for queue in self._queues:
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
