"""``FileWorker``: a session's blocking file work, off the event loop, woken once per batch.

A download's commit (temp file, write, link into place) must not block the loop, so it runs in
a thread. A thread hop per file through ``anyio.to_thread`` wakes an idle thread and reports back
once per file: on a busy client pinned to one core that was ~5 context switches per file and 11%
of the loop's samples in ``Condition.notify`` (row 4 of ``benchmarks/README.md``). Here work
waits in a deque: a worker that is still running takes the next item without being woken, a new
worker starts only when the queue outgrows the busy ones (up to ``threads``), and finished items
reach the loop together, one wake-up of the loop per batch. The threads belong to the session
and end with it (``aclose``), or after ``linger`` seconds with nothing to do (a session never
closed keeps no idle threads).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from collections.abc import Callable
from functools import partial
from typing import Any, Generic, TypeVar

import anyio.to_thread

__all__ = ["FileWorker"]

T = TypeVar("T")


class _Work(Generic[T]):
    """One call: queued, then started by a worker, then settled on the loop."""

    __slots__ = ("ended", "func", "future", "outcome", "settled", "started")

    def __init__(self, func: Callable[[], T], future: asyncio.Future[T]) -> None:
        self.func: Callable[[], T] | None = func
        self.future = future
        self.started = False  # a worker took it (under the worker's lock)
        self.outcome: tuple[bool, Any] = (False, None)  # (raised, value or exception)
        self.settled = False  # its outcome reached the loop
        self.ended: asyncio.Future[None] | None = None  # set when a cancelled caller waits

    def execute(self) -> None:
        """Run the call in a worker thread, keeping its result or its exception."""
        func, self.func = self.func, None  # the call's closure is not kept past its run
        assert func is not None
        try:
            self.outcome = (False, func())
        except BaseException as exc:  # handed to the caller, whatever it is
            self.outcome = (True, exc)

    def settle(self) -> None:
        """On the loop: give the caller the outcome (unless it was cancelled meanwhile)."""
        self.settled = True
        raised, value = self.outcome
        if not self.future.done():
            if raised:
                self.future.set_exception(value)
            else:
                self.future.set_result(value)
        if self.ended is not None and not self.ended.done():
            self.ended.set_result(None)


class FileWorker:
    """A few worker threads, started on first need, that run blocking calls for the loop."""

    def __init__(
        self, *, threads: int = 4, linger: float = 10.0, name: str = "radient-file-worker"
    ) -> None:
        self._most = threads
        self._linger = linger
        self._name = name
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: collections.deque[_Work[Any]] = collections.deque()
        self._finished: list[_Work[Any]] = []  # run, not yet settled on the loop
        self._reporting = False  # a report to the loop is on its way
        self._threads = 0  # started and not yet ended
        self._idle = 0  # waiting to be woken
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._ended: asyncio.Future[None] | None = None
        self.calls = 0  # calls run in its threads (tests count them)

    async def run(self, func: Callable[[], T]) -> T:
        """``func()`` in a worker thread.

        Cancelled while queued, ``func`` never runs; cancelled while it runs, the cancellation
        waits for it to end, so nothing the caller cleans up afterwards races it. After
        ``aclose``, or from an event loop other than the first it served (a session opened in
        one ``asyncio.run`` and used in the next), a call runs in a thread of anyio's instead.
        """
        loop = asyncio.get_running_loop()
        elsewhere = self._loop is not None and loop is not self._loop
        if self._closing or elsewhere:
            return await anyio.to_thread.run_sync(func)
        work = self._submit(func, loop)
        try:
            return await work.future
        except asyncio.CancelledError:
            if not self._withdraw(work):
                await _outlast(work)
            raise

    async def aclose(self) -> None:
        """Let the workers finish what is queued, then end them; waits for the last."""
        with self._lock:
            self._closing = True
            self._wake.notify_all()
            if self._threads == 0 or asyncio.get_running_loop() is not self._loop:
                return  # nothing to wait for, or threads that report to another loop
            if self._ended is None:  # a second aclose waits for the same end
                self._ended = self._loop.create_future()
            ended = self._ended
        with anyio.CancelScope(shield=True):
            await ended

    def _submit(self, func: Callable[[], T], loop: asyncio.AbstractEventLoop) -> _Work[T]:
        self._loop = loop
        work = _Work(func, loop.create_future())
        self.calls += 1
        with self._lock:
            self._queue.append(work)
            if self._idle:
                self._wake.notify()
            # Every worker is busy: one more when the queue outgrows them.
            start = not self._idle and self._threads < min(self._most, len(self._queue))
            if start:
                self._threads += 1
        if start:
            threading.Thread(target=self._serve, name=self._name, daemon=True).start()
        return work

    def _withdraw(self, work: _Work[Any]) -> bool:
        """Take a call back from the queue; False when a worker has started it already."""
        with self._lock:
            if work.started:
                return False
            self._queue.remove(work)
            return True

    def _serve(self) -> None:
        """A worker thread: run queued calls until the worker is closed and the queue empty."""
        while (work := self._next()) is not None:
            work.execute()
            with self._lock:
                self._finished.append(work)
                report, self._reporting = not self._reporting, True
            if report:
                self._tell_loop(self._report)

    def _next(self) -> _Work[Any] | None:
        """The next queued call, waiting for one; None when this worker should end (closed, or
        idle for ``linger`` seconds)."""
        with self._lock:
            lingered = False
            while not self._queue:
                if self._closing or lingered:
                    self._threads -= 1
                    if self._threads == 0 and self._ended is not None:
                        self._tell_loop(partial(self._ended.set_result, None))
                    return None
                self._idle += 1
                lingered = not self._wake.wait(self._linger)
                self._idle -= 1
            work = self._queue.popleft()
            work.started = True
            return work

    def _report(self) -> None:
        """On the loop: settle every call finished since the last report."""
        with self._lock:
            finished, self._finished = self._finished, []
            self._reporting = False
        for work in finished:
            work.settle()

    def _tell_loop(self, callback: Callable[[], None]) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is closed: no one is left waiting
            self._loop.call_soon_threadsafe(callback)


async def _outlast(work: _Work[Any]) -> None:
    """Wait, through any further cancellations, until a started call has been settled."""
    if work.settled:
        return
    ended = work.ended = asyncio.get_running_loop().create_future()
    while not ended.done():
        try:
            await asyncio.shield(ended)
        except asyncio.CancelledError:  # the caller re-raises once the call has ended
            continue
