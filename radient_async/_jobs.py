"""``JobHandle``: a future for one generation job, and ``JobFeed``, the end its poller settles.

A handle is an ``anyio.Event`` plus the last observed status plus an outcome (anyio's own future
shape). The first outcome wins: a result, a failure, or a cancellation; later ones are ignored.
``open_job`` makes the pair, as anyio's memory streams hand out a send and a receive end: the
poller holds the ``JobFeed`` and is told through ``on_finish`` when the handle settles (a caller's
``cancel()`` included), so nothing outside this module touches a handle's internals.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Generator
from typing import Any

import anyio

from ._errors import JobCancelled, JobTimeout, RadientError
from ._models import GenerationResult, JobStatus, JobUpdate
from ._validate import argument, seconds

__all__ = ["JobFeed", "JobHandle", "open_job"]

_WAIT = seconds(zero=True)


class JobHandle:
    """A submitted job. ``await job`` gives its ``GenerationResult`` or raises ``JobFailed``.

    Polling runs in the background in the session's task group; awaiting, ``wait(timeout)`` and
    ``updates()`` only watch it, so many coroutines may watch one job.
    """

    __slots__ = (
        "_changed",
        "_done",
        "_error",
        "_finished",
        "_history",
        "_on_finish",
        "_provider",
        "_request_id",
        "_result",
        "prompt",
        "submitted_at",
    )

    def __init__(
        self,
        request_id: str,
        provider: str | None,
        *,
        prompt: str | None = None,
        submitted_at: float = 0.0,
        on_finish: Callable[[], None] | None = None,
    ) -> None:
        self._request_id = request_id
        self._provider = provider
        self.prompt = prompt
        self.submitted_at = submitted_at
        # Events are made on first use: most handles (sync jobs, batches) are never waited on twice,
        # and creating an anyio.Event costs an async-library lookup.
        self._finished = False
        self._done: anyio.Event | None = None
        self._changed: anyio.Event | None = None
        self._history: list[JobUpdate] = []
        self._result: GenerationResult | None = None
        self._error: RadientError | None = None
        self._on_finish = on_finish

    @property
    def request_id(self) -> str:
        """The server's id for this job; keep it to re-attach later with ``session.job()``."""
        return self._request_id

    @property
    def provider(self) -> str | None:
        """The provider running the job, once known."""
        return self._provider

    @property
    def status(self) -> JobStatus:
        """The last observed status (PROCESSING until the first observation)."""
        return self._history[-1].status if self._history else JobStatus.PROCESSING

    @property
    def last_update(self) -> JobUpdate | None:
        """The last observed state of the job, with the raw status string."""
        return self._history[-1] if self._history else None

    def done(self) -> bool:
        """True once the handle has an outcome (completed, failed, timed out or cancelled)."""
        return self._finished

    def exception(self) -> RadientError | None:
        """The error the job ended with, if it is done and did not succeed."""
        return self._error

    def __await__(self) -> Generator[Any, None, GenerationResult]:
        return self.wait().__await__()

    async def wait(self, timeout: float | None = None) -> GenerationResult:
        """The outcome; after ``timeout`` seconds raise ``JobTimeout`` (polling continues).

        ``None`` waits as long as the job runs; ``0`` only looks.
        """
        if timeout is not None:
            argument("timeout", timeout, _WAIT)
        if not self._finished:
            if self._done is None:
                self._done = anyio.Event()
            if timeout is None:  # no cancel scope when there is no deadline to keep
                await self._done.wait()
            else:
                with anyio.move_on_after(timeout):
                    await self._done.wait()
            if not self._finished:
                raise JobTimeout(self._request_id, float(timeout or 0), self.status.value)
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def cancel(self) -> None:
        """Stop polling this job now; awaiting it then raises ``JobCancelled``.

        The job may still finish on the server; ``session.job(request_id)`` re-attaches to it.
        """
        self._reject(JobCancelled(self._request_id, "cancelled by the caller"))

    async def updates(self) -> AsyncIterator[JobUpdate]:
        """Each observed state change, in order, ending after the final one."""
        seen = 0
        while True:
            while seen < len(self._history):
                update = self._history[seen]
                seen += 1
                yield update
            if self._finished:
                return
            if self._changed is None:
                self._changed = anyio.Event()
            await self._changed.wait()

    def __repr__(self) -> str:
        state = "done" if self.done() else "running"
        return f"<JobHandle {self._request_id} {self.status.value} {state}>"

    # -- fed through a JobFeed ------------------------------------------------------------------

    def _observe(self, update: JobUpdate) -> None:
        """Record an observation; wakes ``updates()`` watchers when the status changed."""
        if self._provider is None and update.provider:
            self._provider = update.provider
        last = self._history[-1] if self._history else None
        if last is not None and last.raw_status == update.raw_status:
            return
        self._history.append(update)
        self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    def _resolve(self, result: GenerationResult) -> None:
        if not self._finished:
            self._result = result
            self._finish()

    def _reject(self, error: RadientError) -> None:
        if not self._finished:
            self._error = error
            self._finish()

    def _finish(self) -> None:
        self._finished = True
        if self._done is not None:
            self._done.set()
        self._notify()
        hook, self._on_finish = self._on_finish, None
        if hook is not None:
            hook()


class JobFeed:
    """The settling end of one ``JobHandle``: observations, then one outcome."""

    __slots__ = ("handle",)

    def __init__(self, handle: JobHandle) -> None:
        self.handle = handle

    def observe(self, update: JobUpdate) -> None:
        """Record an observed state (wakes ``updates()`` watchers on a change)."""
        self.handle._observe(update)

    def resolve(self, result: GenerationResult) -> None:
        """Settle with a result (ignored once settled)."""
        self.handle._resolve(result)

    def reject(self, error: RadientError) -> None:
        """Settle with an error (ignored once settled)."""
        self.handle._reject(error)

    @property
    def done(self) -> bool:
        """True once the handle has its outcome."""
        return self.handle._finished  # read on every settle: no second call through done()


def open_job(
    request_id: str,
    provider: str | None,
    *,
    prompt: str | None,
    submitted_at: float,
    on_finish: Callable[[], None] | None = None,
) -> tuple[JobHandle, JobFeed]:
    """A new handle and the feed that settles it; ``on_finish`` runs once, when it settles."""
    handle = JobHandle(
        request_id, provider, prompt=prompt, submitted_at=submitted_at, on_finish=on_finish
    )
    return handle, JobFeed(handle)
