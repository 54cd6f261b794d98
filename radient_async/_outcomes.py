"""``Outcomes``: finished batch items on their way to the consumer of ``Session.map``.

An item's task puts its outcome here and ends; it never waits for the consumer. The item's slot
travels with its outcome and goes back when the consumer takes it, so the read-ahead stays at
most the batch's concurrency. One plain asyncio future wakes the consumer (sessions run on
asyncio): a zero-buffer memory stream made each of 10,000 items wait on an event of its own.
"""

from __future__ import annotations

import asyncio
import collections

from ._batch_items import BatchOutcome
from ._slots import Slots

__all__ = ["Outcomes"]


class Outcomes:
    """A queue of outcomes with one reader; iterating it ends once it is closed and empty."""

    __slots__ = ("_closed", "_ready", "_slots", "_waiter")

    def __init__(self, slots: Slots) -> None:
        self._slots = slots
        self._ready: collections.deque[BatchOutcome] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    def put(self, outcome: BatchOutcome) -> None:
        """Hand over one item's outcome (it holds one of ``slots`` until it is taken)."""
        self._ready.append(outcome)
        self._wake()

    def close(self) -> None:
        """No more outcomes will come; the reader stops after the ones already here."""
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> Outcomes:
        return self

    async def __anext__(self) -> BatchOutcome:
        while not self._ready:
            if self._closed:
                raise StopAsyncIteration
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            await waiter
        self._slots.release()
        return self._ready.popleft()
