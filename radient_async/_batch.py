"""Batches: many generations (and downloads) under the session's shared limits.

``Session.map`` pulls items lazily (a generator of 10,000 prompts, or an endless async stream, is
consumed only as capacity frees up), runs each item in the session's task group, and yields one
``BatchOutcome`` per item. One item's failure never stops the others unless ``fail_fast`` is set.
Leaving the loop early (``break``, an exception, a cancelled task) cancels every outstanding poll
and download before ``map`` finishes closing, and removes their temporary files.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Coroutine,
    Iterable,
    Mapping,
)
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._errors import RadientError, SessionClosedError, ValidationError
from ._manifest import Manifest, ManifestEntry, ManifestMismatchError, request_fingerprint
from ._models import GenerationRequest, GenerationResult
from ._progress import ProgressSink, ProgressSpec, make_progress

if TYPE_CHECKING:
    from ._jobs import JobHandle
    from ._session import Session

__all__ = ["BatchItem", "BatchOutcome", "run_batch"]

BatchItem = str | GenerationRequest | Mapping[str, Any]


@attrs.frozen(kw_only=True)
class BatchOutcome:
    """What became of one batch item: its result (and saved files) or its error."""

    index: int
    item: BatchItem
    request_id: str | None = None
    result: GenerationResult | None = None
    paths: tuple[str, ...] = ()
    error: RadientError | None = None
    resumed: bool = False

    @property
    def ok(self) -> bool:
        """True when the item produced its images (and files, when downloading)."""
        return self.error is None

    def unwrap(self) -> GenerationResult:
        """The result, or raise the item's error."""
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result

    def _repr_html_(self) -> str:
        from ._display import result_html

        return result_html(self.result) if self.result else f"<pre>{self.error}</pre>"


def to_request(item: BatchItem, defaults: Mapping[str, Any]) -> GenerationRequest:
    """A prompt, a request, or a JSON-like mapping of request fields, as a ``GenerationRequest``."""
    if isinstance(item, GenerationRequest):
        return item
    if isinstance(item, str):
        return GenerationRequest(prompt=item, **defaults)
    if isinstance(item, Mapping):
        fields = {**defaults, **item}
        if "source" in fields:
            raise ValidationError("source", "batch items take source_url (a URL or data: URI)")
        known = {a.name for a in attrs.fields(GenerationRequest)}
        extra = {k: v for k, v in fields.items() if k not in known}
        named = {k: v for k, v in fields.items() if k in known}
        if extra:
            named["extra"] = {**dict(named.get("extra") or {}), **extra}
        return GenerationRequest(**named)
    raise ValidationError("items", f"each item must be a prompt, request or mapping, not {item!r}")


async def _enumerate(
    items: Iterable[BatchItem] | AsyncIterable[BatchItem],
) -> AsyncGenerator[tuple[int, BatchItem], None]:
    if isinstance(items, AsyncIterable):
        index = 0
        async for item in items:
            yield index, item
            index += 1
    else:
        for index, item in enumerate(items):
            yield index, item


@attrs.define
class _Run:
    """One batch in progress: its workers live under ``scope`` in the session's task group."""

    session: Session
    items: Iterable[BatchItem] | AsyncIterable[BatchItem]
    defaults: Mapping[str, Any]
    download_to: str | None
    overwrite: bool
    concurrency: int
    manifest: Manifest | None
    progress: ProgressSink
    send: MemoryObjectSendStream[BatchOutcome]
    scope: anyio.CancelScope = attrs.field(factory=anyio.CancelScope)
    stopped: anyio.Event = attrs.field(factory=anyio.Event)
    fatal: RadientError | None = None
    finished: bool = False

    async def drive(self) -> None:
        """Feed items to workers as capacity frees up; close the stream when all are done.

        A slot is taken *before* the next item is pulled and given back only when the consumer
        has received the item's outcome, so at most ``concurrency`` items are ever read ahead.
        """
        slots = anyio.Semaphore(self.concurrency)
        try:
            with self.scope:
                items = _enumerate(self.items)
                async with self.send, aclosing(items), anyio.create_task_group() as group:
                    while True:
                        await slots.acquire()
                        try:
                            index, item = await items.__anext__()
                        except StopAsyncIteration:
                            break
                        except Exception as exc:  # the caller's iterable failed: stop
                            self.fail(ValidationError("items", f"the input failed: {exc!r}"))
                            break
                        group.start_soon(self.work, index, item, slots)
                if self.fatal is None:
                    self.finished = True
        finally:
            self.stopped.set()

    def fail(self, error: RadientError) -> None:
        """Stop the whole batch with ``error`` (raised to the consumer)."""
        if self.fatal is None:
            self.fatal = error
        self.scope.cancel()

    async def work(self, index: int, item: BatchItem, slots: anyio.Semaphore) -> None:
        """Run one item to its outcome and hand it to the consumer (backpressure included)."""
        try:
            outcome = await self.outcome_of(index, item)
            await self.send.send(outcome)
        except ManifestMismatchError as exc:
            self.fail(exc)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the consumer left; the batch is being cancelled
        finally:
            slots.release()

    async def outcome_of(self, index: int, item: BatchItem) -> BatchOutcome:
        request_id: str | None = None
        fingerprint = ""
        try:
            request = to_request(item, self.defaults)
            fingerprint = request_fingerprint(request)
            entry = self.manifest.lookup(index, fingerprint) if self.manifest else None
        except ManifestMismatchError:
            raise
        except RadientError as exc:
            self.progress.failed()
            return BatchOutcome(index=index, item=item, error=exc)
        try:
            if entry is not None and entry.finished:
                return self._resumed(index, item, entry)
            handle = await self._start(index, request, fingerprint, entry)
            request_id = handle.request_id
            self.progress.submitted()
            try:
                result = await handle
            except BaseException:  # the batch was cancelled: its job's poller must stop too
                handle.cancel()
                raise
            paths: tuple[str, ...] = ()
            if self.download_to is not None:
                # A re-attached job may have saved its files before the interruption; they are
                # named by its request id, so replacing them rewrites the same image.
                replace = self.overwrite or entry is not None
                paths = tuple(await result.download(self.download_to, overwrite=replace))
                nbytes = await anyio.to_thread.run_sync(_sizes, paths)
                self.progress.downloaded(len(paths), nbytes)
            if self.manifest:
                await self.manifest.record(
                    ManifestEntry(
                        index, fingerprint, request_id, handle.provider, "completed", paths
                    )
                )
            self.progress.completed()
            return BatchOutcome(
                index=index, item=item, request_id=request_id, result=result, paths=paths
            )
        except RadientError as exc:
            if self.manifest and request_id is not None:
                await self.manifest.record(
                    ManifestEntry(index, fingerprint, request_id, None, "failed", (), str(exc))
                )
            self.progress.failed()
            return BatchOutcome(index=index, item=item, request_id=request_id, error=exc)

    async def _start(
        self,
        index: int,
        request: GenerationRequest,
        fingerprint: str,
        entry: ManifestEntry | None,
    ) -> JobHandle:
        """Re-attach to a job the manifest knows, else submit (with a replay-safe key)."""
        session = self.session
        if entry is not None and entry.request_id:
            return session.job(entry.request_id, entry.provider)
        key = self.manifest.idempotency_key(index, fingerprint) if self.manifest else None
        handle = await session._submit_request(request, session._poll.timeout, key)
        if self.manifest:
            await self.manifest.record(
                ManifestEntry(index, fingerprint, handle.request_id, handle.provider, "submitted")
            )
        return handle

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
            paths=entry.files,
            resumed=True,
        )


def _sizes(paths: tuple[str, ...]) -> int:
    total = 0
    for path in paths:
        with contextlib.suppress(OSError):
            total += os.stat(path).st_size
    return total


async def run_batch(
    session: Session,
    items: Iterable[BatchItem] | AsyncIterable[BatchItem],
    *,
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
    limit = _check_concurrency(concurrency, session.limits.jobs)
    book = await Manifest.open(manifest) if manifest is not None else None
    sink = make_progress(progress, _length_of(items))
    send, receive = anyio.create_memory_object_stream[BatchOutcome](0)
    run = _Run(
        session,
        items,
        defaults,
        None if download_to is None else os.fspath(download_to),
        overwrite,
        limit,
        book,
        sink,
        send,
    )
    try:
        start(run.drive)
    except BaseException:
        send.close()
        receive.close()
        sink.close()
        raise
    try:
        with receive:
            outcomes = _in_order(receive) if ordered else receive
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


async def _in_order(
    receive: MemoryObjectReceiveStream[BatchOutcome],
) -> AsyncIterator[BatchOutcome]:
    """Outcomes re-ordered by input index (later ones wait for earlier ones)."""
    pending: dict[int, BatchOutcome] = {}
    expected = 0
    async for outcome in receive:
        pending[outcome.index] = outcome
        while expected in pending:
            yield pending.pop(expected)
            expected += 1
    for index in sorted(pending):
        yield pending[index]


def _length_of(items: object) -> int | None:
    try:
        return len(items)  # type: ignore[arg-type]
    except TypeError:
        return None


def _check_concurrency(value: int | None, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError("concurrency", f"must be a positive integer, got {value!r}")
    return value
