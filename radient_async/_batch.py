"""Batches: many generations (and downloads) under the session's shared limits.

``Session.map`` pulls items lazily (a generator of 10,000 prompts, or an endless async stream, is
consumed only as capacity frees up), runs each item in the session's task group, and yields one
``BatchOutcome`` per item. One item's failure never stops the others unless ``fail_fast`` is set.
Leaving the loop early (``break``, an exception, a cancelled task) cancels every outstanding poll
and download before ``map`` finishes closing, and removes their temporary files.
"""

from __future__ import annotations

import logging
import os
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Mapping,
)
from contextlib import aclosing
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.lowlevel
import anyio.to_thread
import attrs

from ._batch_items import (
    BatchItem,
    BatchOutcome,
    check_concurrency,
    enumerate_items,
    in_order,
    item_error,
    item_idempotency_key,
    length_of,
    to_request,
)
from ._config import Limits
from ._errors import JobFailed, NotFoundError, RadientError, SessionClosedError, ValidationError
from ._keys import request_fingerprint
from ._manifest import Manifest, ManifestEntry, ManifestMismatchError, unusable_files
from ._models import GenerationRequest, GenerationResult, Image
from ._outcomes import Outcomes
from ._paths import check_output_folder
from ._progress import ProgressSink, ProgressSpec, make_progress
from ._slots import Slots
from ._validate import argument, boolean
from ._validate import path as a_path

if TYPE_CHECKING:
    from ._jobs import JobHandle

__all__ = ["Submitter", "run_batch"]

_log = logging.getLogger("radient_async")
_FILL_TURNS = 64  # loop turns ``drive`` spreads the start of a full window of items over


class Submitter(Protocol):
    """What a batch needs of a session: submit a request, re-attach to a job, save its images."""

    async def submit(
        self, request: GenerationRequest, *, idempotency_key: str | None = None
    ) -> JobHandle: ...

    def attach(self, request_id: str, provider: str | None) -> JobHandle: ...

    async def submit_and_watch(
        self,
        request: GenerationRequest,
        *,
        idempotency_key: str | None,
        submitted: Callable[[JobHandle], Awaitable[None]],
    ) -> JobHandle: ...

    async def save_images(
        self, images: tuple[Image, ...], directory: str, *, overwrite: bool
    ) -> list[tuple[str, int]]: ...


@attrs.define
class _Run:
    """One batch in progress: its workers live under ``scope`` in the session's task group."""

    jobs: Submitter
    items: Iterable[BatchItem] | AsyncIterable[BatchItem]
    defaults: Mapping[str, Any]
    download_to: str | None
    overwrite: bool
    concurrency: int
    manifest: Manifest | None
    progress: ProgressSink
    slots: Slots  # one per item in flight, from before it is pulled until its outcome is taken
    outcomes: Outcomes
    folder: str | None = None  # download_to, resolved once (manifests record it)
    scope: anyio.CancelScope = attrs.field(factory=anyio.CancelScope)
    stopped: anyio.Event = attrs.field(factory=anyio.Event)
    fatal: RadientError | None = None
    finished: bool = False

    async def drive(self) -> None:
        """Feed items to workers as capacity frees up; close ``outcomes`` when all are done.

        A slot is taken *before* the next item is pulled and given back only when the consumer
        takes the item's outcome (``Outcomes``), so at most ``concurrency`` items are read ahead.
        A free slot costs no await. The driver yields to the loop once per ``run`` items, so
        starting a full window takes about ``_FILL_TURNS`` loop turns whatever the concurrency
        (10,000 items at one turn each cost ~20% of the client's CPU at scale). A window of up
        to ``_FILL_TURNS`` still starts one item per turn: each item's submit leaves before the
        next item is pulled, which a small window's downloads measure better with.
        """
        run = -(-self.concurrency // _FILL_TURNS)
        slots = self.slots
        try:
            with self.scope:
                items = enumerate_items(self.items)
                async with aclosing(items), anyio.create_task_group() as group:
                    pulled = 0
                    while True:
                        pulled += 1
                        if pulled % run == 0:
                            await anyio.lowlevel.checkpoint()
                        await slots.acquire()  # a free slot returns without awaiting
                        try:
                            index, item = await items.__anext__()
                        except StopAsyncIteration:
                            break
                        except Exception as exc:  # the caller's iterable failed: stop
                            self.fail(ValidationError("items", f"the input failed: {exc!r}"))
                            break
                        group.start_soon(self.work, index, item)
                if self.fatal is None:
                    self.finished = True
        finally:
            self.outcomes.close()
            self.stopped.set()

    def fail(self, error: RadientError) -> None:
        """Stop the whole batch with ``error`` (raised to the consumer)."""
        if self.fatal is None:
            self.fatal = error
        self.scope.cancel()

    async def work(self, index: int, item: BatchItem) -> None:
        """Run one item to its outcome and hand it to the consumer, with the item's slot.

        Whatever goes wrong in an item is the item's, never the batch's, except a manifest
        that does not match the input: that stops the batch (and its slots go with it).
        """
        state = _Item(index, item)
        try:
            outcome = await self._run(state)
        except ManifestMismatchError as exc:
            self.fail(exc)
            return
        except Exception as exc:
            outcome = await self._failed(state, exc)
        self.outcomes.put(outcome)

    async def _run(self, state: _Item) -> BatchOutcome:
        request = to_request(state.item, self.defaults)
        state.fingerprint = request_fingerprint(request)
        entry = self.manifest.lookup(state.index, state.fingerprint) if self.manifest else None
        if entry is not None and entry.finished:
            problem = await self._unusable_files(entry)
            if problem is None:
                return self._resumed(state.index, state.item, entry)
            # Its job finished: re-attach and download its images again, never generate anew.
            _log.info("item %d: %s; downloading its images again", state.index, problem)
            if not entry.request_id:
                raise RadientError(f"{problem}, and no request id was recorded to fetch them by")
        result, handle = await self._generate(state, request, entry)
        paths: tuple[str, ...] = ()
        sizes: tuple[int, ...] = ()
        folder: str | None = None
        if self.download_to is not None:
            # A re-attached job may have saved its files before the interruption; they are
            # named by its request id, so replacing them rewrites the same image.
            replace = self.overwrite or entry is not None
            saved = await self.jobs.save_images(result.images, self.download_to, overwrite=replace)
            paths, sizes = tuple(p for p, _ in saved), tuple(size for _, size in saved)
            folder = self.folder
            self.progress.downloaded(len(paths), sum(sizes))
        if self.manifest:
            await self.manifest.record(
                ManifestEntry(
                    state.index,
                    state.fingerprint,
                    state.request_id,
                    handle.provider,
                    "completed",
                    paths,
                    sizes=sizes,
                    folder=folder,
                )
            )
        self.progress.completed()
        return BatchOutcome(
            index=state.index,
            item=state.item,
            request_id=state.request_id,
            result=result,
            paths=paths,
            resubmitted=state.resubmitted,
        )

    async def _unusable_files(self, entry: ManifestEntry) -> str | None:
        """Why a completed item's recorded files cannot be trusted in this run, or None."""
        if self.download_to is None:
            return None  # nothing to save; its recorded paths are not returned either
        return await anyio.to_thread.run_sync(unusable_files, entry, self.download_to)

    async def _generate(
        self, state: _Item, request: GenerationRequest, entry: ManifestEntry | None
    ) -> tuple[GenerationResult, JobHandle]:
        """The job's result: re-attached when the manifest knows it, resubmitted if it is lost."""
        handle = await self._start(state, request, entry)
        try:
            return await handle, handle
        except NotFoundError:
            if entry is None or not entry.request_id:
                raise
        except BaseException:  # the batch was cancelled: its job's poller must stop too
            handle.cancel()
            raise
        # The server no longer knows the job the manifest recorded: submit it again, and say so.
        assert self.manifest is not None
        await self.manifest.record(
            ManifestEntry(
                state.index,
                state.fingerprint,
                entry.request_id,
                None,
                "failed",
                (),
                f"job {entry.request_id} unknown to the server; submitted again",
            )
        )
        state.resubmitted = True
        handle = await self._start(state, request, None)
        try:
            return await handle, handle
        except BaseException:
            handle.cancel()
            raise

    async def _start(
        self, state: _Item, request: GenerationRequest, entry: ManifestEntry | None
    ) -> JobHandle:
        """Re-attach to a job the manifest knows, else submit (with a replay-safe key) and watch
        it in this item's task."""
        if entry is not None and entry.request_id:
            handle = self.jobs.attach(entry.request_id, entry.provider)
            self._started(state, handle)
            return handle
        key = item_idempotency_key(state.item)
        if key is None and self.manifest:
            key = self.manifest.idempotency_key(state.index, state.fingerprint)
        # A partial, not a closure: it lives as long as the job, 10,000 of them in a big batch.
        submitted = partial(self._submitted, state)
        return await self.jobs.submit_and_watch(request, idempotency_key=key, submitted=submitted)

    async def _submitted(self, state: _Item, handle: JobHandle) -> None:
        """The item's job was submitted: note it in the manifest and count it."""
        if self.manifest:
            await self.manifest.record(
                ManifestEntry(
                    state.index, state.fingerprint, handle.request_id, handle.provider, "submitted"
                )
            )
        self._started(state, handle)

    def _started(self, state: _Item, handle: JobHandle) -> None:
        state.request_id = handle.request_id
        if not state.counted:  # a job resubmitted for a lost one is still one item in flight
            state.counted = True
            self.progress.submitted()

    async def _failed(self, state: _Item, exc: Exception) -> BatchOutcome:
        """The outcome of an item that failed with ``exc`` (typed, if it is not), recorded."""
        error = exc if isinstance(exc, RadientError) else item_error(exc)
        self.progress.failed()
        await self._record_failure(state, error)
        return BatchOutcome(
            index=state.index,
            item=state.item,
            request_id=state.request_id,
            error=error,
            resubmitted=state.resubmitted,
        )

    async def _record_failure(self, state: _Item, error: RadientError) -> None:
        """Note a failed item; only a job the server failed is final, the rest re-attach later."""
        if not self.manifest or state.request_id is None:
            return
        status = "failed" if isinstance(error, JobFailed) else "unfinished"
        entry = ManifestEntry(
            state.index, state.fingerprint, state.request_id, None, status, (), str(error)
        )
        try:
            await self.manifest.record(entry)
        except Exception:
            _log.exception("could not record item %d in the manifest", state.index)

    def _resumed(self, index: int, item: BatchItem, entry: ManifestEntry) -> BatchOutcome:
        self.progress.completed()
        if entry.status == "failed":
            error = RadientError(f"failed in an earlier run: {entry.error}")
            return BatchOutcome(index=index, item=item, request_id=entry.request_id, error=error)
        result = GenerationResult(request_id=entry.request_id or "", provider=entry.provider)
        return BatchOutcome(
            index=index,
            item=item,
            request_id=entry.request_id,
            result=result,
            paths=entry.files if self.download_to is not None else (),  # checked: unusable_files
            resumed=True,
        )


@attrs.define
class _Item:
    """One item as it runs: what is known of it so far."""

    index: int
    item: BatchItem
    fingerprint: str = ""
    request_id: str | None = None
    resubmitted: bool = False
    counted: bool = False  # reported to progress as submitted


def _checked_folder(download_to: str) -> str:
    """``download_to`` checked as an output folder, and resolved (blocking: a thread)."""
    check_output_folder(download_to)
    return os.path.realpath(download_to)


async def run_batch(
    jobs: Submitter,
    items: Iterable[BatchItem] | AsyncIterable[BatchItem],
    *,
    limits: Limits,
    start: Callable[[Callable[[], Coroutine[Any, Any, None]]], object],
    defaults: Mapping[str, Any],
    download_to: str | os.PathLike[str] | None,
    overwrite: bool,
    concurrency: int | None,
    ordered: bool,
    fail_fast: bool,
    manifest: str | os.PathLike[str] | None,
    progress: ProgressSpec,
) -> AsyncIterator[BatchOutcome]:
    """The body of ``Session.map``: an async generator of outcomes."""
    limit = check_concurrency(concurrency, limits.jobs)
    for name, flag in (("overwrite", overwrite), ("ordered", ordered), ("fail_fast", fail_fast)):
        argument(name, flag, boolean)
    for name, where in (("download_to", download_to), ("manifest", manifest)):
        if where is not None:
            argument(name, where, a_path)
    folder = None
    if download_to is not None:
        folder = await anyio.to_thread.run_sync(_checked_folder, os.fspath(download_to))
    book = await Manifest.open(manifest) if manifest is not None else None
    sink = make_progress(progress, length_of(items))
    slots = Slots(limit)
    received = Outcomes(slots)
    run = _Run(
        jobs,
        items,
        defaults,
        None if download_to is None else os.fspath(download_to),
        overwrite,
        limit,
        book,
        sink,
        slots,
        received,
        folder=folder,
    )
    try:
        start(run.drive)
    except BaseException:
        sink.close()
        raise
    try:
        outcomes = in_order(received) if ordered else received
        async for outcome in outcomes:
            if fail_fast and outcome.error is not None:
                raise outcome.error
            yield outcome
        if run.fatal is not None:
            raise run.fatal
        if not run.finished:
            raise SessionClosedError("the session closed before the batch finished")
    finally:
        run.scope.cancel()
        with anyio.CancelScope(shield=True):
            await run.stopped.wait()
            sink.close()
