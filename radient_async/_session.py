"""``Session``: the async entry point that glues the pure core to the transport.

A session owns one aiohttp connection pool, one anyio task group for every background poller, the
shared limits (jobs, API requests, downloads) and the adaptive rate gate. Nothing is global: two
sessions, or sessions in successive ``asyncio.run`` calls, share nothing.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from types import TracebackType
from typing import Any

import anyio
import anyio.abc

from ._batch import BatchItem, BatchOutcome, run_batch
from ._config import Limits, Timeouts
from ._convert import WireJob
from ._downloads import Downloader
from ._errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    JobCancelled,
    JobFailed,
    JobTimeout,
    NotFoundError,
    PermissionDeniedError,
    RadientError,
    SessionClosedError,
    UnexpectedStatusError,
    ValidationError,
)
from ._http import Transport
from ._jobs import JobHandle
from ._models import (
    GenerationRequest,
    GenerationResult,
    Image,
    ImageSize,
    JobStatus,
    JobUpdate,
)
from ._polling import DurationEstimate, PollPolicy, poll_delay
from ._progress import ProgressSpec
from ._protocol import (
    ApiEndpoint,
    HttpRequest,
    HttpResponse,
    build_generate,
    build_providers,
    build_status,
    decipher_job,
    decipher_providers,
    poll_hint,
    redirect_for,
)
from ._ratelimit import RateGate
from ._retry import RetryPolicy, backoff_delay, parse_retry_after
from ._slots import Slots
from ._sources import SourceInput, resolve_source
from ._status import StatusMachine, Step, parse_status

__all__ = ["DEFAULT_BASE_URL", "Session"]

DEFAULT_BASE_URL = "https://api.radient.com/v1"
_log = logging.getLogger("radient_async")
_MAX_REDIRECTS = 5
# Errors that end a job's polling at once; anything else is retried until the job's deadline.
_PERMANENT = (AuthenticationError, PermissionDeniedError, NotFoundError, BadRequestError)
_MAX_POLL_FAILURES = 8


class Session:
    """An open connection to the Radient API; use it as ``async with Session() as session``.

    ``api_key`` and ``base_url`` default to ``RADIENT_API_KEY`` and ``RADIENT_BASE_URL`` (read when
    the session is created, never at import). Every value is checked here, before any network call.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        limits: Limits | None = None,
        allow_insecure_http: bool = False,
        fsync_downloads: bool = False,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get("RADIENT_API_KEY")
        url = base_url if base_url is not None else os.environ.get("RADIENT_BASE_URL")
        if not key:
            raise ConfigurationError(
                "no API key: pass api_key=... or set RADIENT_API_KEY "
                "(for the local server, see radient_async.server)"
            )
        self._api = ApiEndpoint.create(
            url or DEFAULT_BASE_URL, key, allow_insecure_http=allow_insecure_http
        )
        self._timeouts: Timeouts = _checked("timeouts", timeouts, Timeouts)
        self._retry: RetryPolicy = _checked("retry", retry, RetryPolicy)
        self._poll: PollPolicy = _checked("poll", poll, PollPolicy)
        self._limits: Limits = _checked("limits", limits, Limits)
        self._transport = Transport(self._limits, self._timeouts)
        self._downloader = Downloader(
            self._transport,
            self._api,
            limits=self._limits,
            timeouts=self._timeouts,
            retry=self._retry,
            fsync=fsync_downloads,
        )
        self._gate = RateGate()
        self._durations = DurationEstimate()
        self._rng = random.Random()
        self._group: anyio.abc.TaskGroup | None = None
        self._state = "new"
        self._requests = Slots(self._limits.requests)
        self._job_slots = Slots(self._limits.jobs)

    # -- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> Session:
        if self._state != "new":
            raise SessionClosedError("a Session can be entered only once; create a new one")
        await self._transport.open()
        group = anyio.create_task_group()
        await group.__aenter__()
        self._group, self._state = group, "open"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        """Stop every poller (their handles raise ``JobCancelled``) and close the pool.

        An exception from the ``async with`` body propagates as itself: pollers never raise, so the
        task group is closed as if the body had finished, instead of wrapping the error in a group.
        """
        self._state = "closing"
        group, self._group = self._group, None
        try:
            if group is not None:
                group.cancel_scope.cancel()
                await group.__aexit__(None, None, None)
        finally:
            with anyio.CancelScope(shield=True):
                await self._transport.close()
            self._state = "closed"
        return None

    @property
    def base_url(self) -> str:
        """The API base URL this session talks to."""
        return self._api.base_url

    @property
    def limits(self) -> Limits:
        """The shared caps in force."""
        return self._limits

    def __repr__(self) -> str:
        return f"<Session {self._api.base_url} {self._state}>"

    def _open_group(self) -> anyio.abc.TaskGroup:
        if self._group is None or self._state != "open":
            raise SessionClosedError(
                f"the session is {self._state}; use it inside `async with Session(...)`"
            )
        return self._group

    # -- public API -----------------------------------------------------------------------------

    async def providers(self) -> tuple[str, ...]:
        """The provider ids the API offers."""
        self._open_group()
        response = await self._call(build_providers(self._api))
        return decipher_providers(response, self._api)

    async def submit(
        self,
        prompt: str | GenerationRequest,
        *,
        num_images: int = 1,
        image_size: str | ImageSize | tuple[int, int] | None = None,
        sync_mode: bool = False,
        provider: str | None = None,
        source: SourceInput | None = None,
        strength: float | None = None,
        guidance_scale: float | None = None,
        num_inference_steps: int | None = None,
        seed: int | None = None,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> JobHandle:
        """Submit one generation and return its ``JobHandle``; polling runs in the background.

        ``prompt`` may be a ``GenerationRequest`` built beforehand (then give no other fields).
        ``source`` (a path, bytes, file object, PIL image, URL or ``data:`` URI) makes it
        image-to-image. ``timeout`` overrides the poll policy's job deadline.
        """
        self._open_group()
        if isinstance(prompt, GenerationRequest):
            given = [
                name
                for name, set_ in (
                    ("num_images", num_images != 1),
                    ("image_size", image_size is not None),
                    ("sync_mode", sync_mode),
                    ("provider", provider is not None),
                    ("source", source is not None),
                    ("strength", strength is not None),
                    ("guidance_scale", guidance_scale is not None),
                    ("num_inference_steps", num_inference_steps is not None),
                    ("seed", seed is not None),
                    ("extra", bool(extra)),
                )
                if set_
            ]
            if given:
                raise ValidationError(
                    given[0], "set it on the GenerationRequest, not beside it (the two would clash)"
                )
            request = prompt
        else:
            source_url = None if source is None else await resolve_source(source)
            request = GenerationRequest(
                prompt=prompt,
                num_images=num_images,
                image_size=image_size,
                sync_mode=sync_mode,
                provider=provider,
                source_url=source_url,
                strength=strength,
                guidance_scale=guidance_scale,
                num_inference_steps=num_inference_steps,
                seed=seed,
                extra=extra or {},
            )
        deadline = _check_timeout(timeout, self._poll.timeout)
        return await self._submit_request(request, deadline)

    async def generate(self, prompt: str | GenerationRequest, **fields: Any) -> GenerationResult:
        """Submit and wait: ``submit(...)`` then ``await`` the handle."""
        return await (await self.submit(prompt, **fields))

    def job(self, request_id: str, provider: str | None = None) -> JobHandle:
        """Re-attach to a job submitted earlier (another process, a restarted notebook)."""
        group = self._open_group()
        if not isinstance(request_id, str) or not request_id.strip():
            raise ValidationError("request_id", "must be a non-empty string")
        handle = JobHandle(request_id, provider)
        group.start_soon(self._poll_job, handle, self._poll.timeout, None, False)
        return handle

    def map(
        self,
        items: Iterable[BatchItem] | AsyncIterable[BatchItem],
        *,
        download_to: str | os.PathLike[str] | None = None,
        overwrite: bool = False,
        concurrency: int | None = None,
        ordered: bool = False,
        fail_fast: bool = False,
        manifest: str | os.PathLike[str] | None = None,
        progress: ProgressSpec = None,
        **defaults: Any,
    ) -> AsyncIterator[BatchOutcome]:
        """Run many generations; yields a ``BatchOutcome`` per item as each finishes.

        ``items`` are prompts, ``GenerationRequest`` objects or mappings of request fields, from a
        (possibly endless) iterable or async iterable that is read only as capacity frees up.
        ``defaults`` (e.g. ``num_images=2``) apply to prompt and mapping items. ``concurrency`` caps
        this batch's items in flight (default: the session's job limit). ``ordered=True`` yields in
        input order. ``fail_fast=True`` raises the first item's error instead of yielding it.
        ``manifest`` makes the batch resumable; ``progress`` turns on reporting (``True``,
        ``"tqdm"``, ``"rich"``, a callable or a sink).
        Leaving the loop early cancels everything outstanding.
        """
        group = self._open_group()
        return run_batch(
            self,
            items,
            start=group.start_soon,
            defaults=defaults,
            download_to=download_to,
            overwrite=overwrite,
            concurrency=concurrency,
            ordered=ordered,
            fail_fast=fail_fast,
            manifest=manifest,
            progress=progress,
        )

    # -- submitting and polling -----------------------------------------------------------------

    async def _submit_request(
        self, request: GenerationRequest, deadline: float, idempotency_key: str | None = None
    ) -> JobHandle:
        slots = self._job_slots
        await slots.acquire()
        try:
            http = build_generate(self._api, request, idempotency_key or secrets.token_hex(16))
            response = await self._call(http)
            job = decipher_job(response, self._api)
        except BaseException:
            slots.release()
            raise
        handle = JobHandle(job.request_id, job.provider or request.provider, prompt=request.prompt)
        handle._cancel_hook = slots.release
        if not self._settle(handle, job, StatusMachine(max_unknown=self._poll.max_unknown)):
            self._open_group().start_soon(
                self._poll_job, handle, deadline, poll_hint(response), True
            )
        return handle

    def _settle(self, handle: JobHandle, job: WireJob, machine: StatusMachine) -> bool:
        """Feed one observation to the handle; True once the handle has its outcome."""
        step = machine.observe(job.status)
        images = self._images(job)
        handle._observe(
            JobUpdate(
                request_id=job.request_id,
                status=parse_status(job.status),
                raw_status=job.status,
                provider=job.provider,
                images=images,
                error=job.error,
                seed=job.seed,
            )
        )
        if step is Step.COMPLETE:
            handle._resolve(
                GenerationResult(
                    request_id=job.request_id,
                    provider=job.provider or handle.provider,
                    images=images,
                    seed=job.seed,
                    prompt=handle.prompt,
                    fetcher=self._downloader,
                )
            )
        elif step is Step.FAIL:
            handle._reject(JobFailed(job.request_id, job.error))
        elif step is Step.GIVE_UP:
            handle._reject(UnexpectedStatusError(job.request_id, job.status))
        return handle.done()

    def _images(self, job: WireJob) -> tuple[Image, ...]:
        return tuple(
            Image(
                url=image.url,
                width=image.width,
                height=image.height,
                content_type=image.content_type,
                request_id=job.request_id,
                index=index,
                fetcher=self._downloader,
            )
            for index, image in enumerate(job.images or ())
        )

    async def _poll_job(
        self, handle: JobHandle, timeout: float, hint: float | None, slot_held: bool
    ) -> None:
        """Poll one job until it settles, its deadline passes, or it is cancelled.

        Runs in the session's task group, so it must never raise: every outcome goes to the handle.
        """
        slots = self._job_slots
        scope = handle._scope = anyio.CancelScope()
        try:
            with scope:
                if not slot_held:
                    await slots.acquire()
                    handle._cancel_hook = slots.release
                await self._poll_until_settled(handle, timeout, hint)
        except anyio.get_cancelled_exc_class():
            handle._reject(JobCancelled(handle.request_id, "the session closed"))
            raise
        except RadientError as exc:
            handle._reject(exc)
        except Exception as exc:  # a bug must not take the session's task group down
            _log.exception("internal error while polling %s", handle.request_id)
            handle._reject(RadientError(f"internal error while polling: {exc!r}"))
        if not handle.done():  # only our own scope was cancelled: handle.cancel() got here first
            handle._reject(JobCancelled(handle.request_id, "cancelled"))

    async def _poll_until_settled(
        self, handle: JobHandle, timeout: float, hint: float | None
    ) -> None:
        machine = StatusMachine(max_unknown=self._poll.max_unknown)
        deadline = handle.submitted_at + timeout
        failures = 0
        first: float | None = self._durations.first_delay(self._poll)
        while True:
            now = time.monotonic()
            elapsed = now - handle.submitted_at
            if first is not None:
                first = max(0.0, first - elapsed)  # the first look is timed from submission
            delay = poll_delay(self._poll, elapsed, hint=hint, rng=self._rng, first=first)
            first = None
            if now + delay >= deadline:
                await anyio.sleep(max(0.0, deadline - now))
                raise JobTimeout(handle.request_id, timeout, handle.status.value)
            await anyio.sleep(delay)
            request = build_status(self._api, handle.request_id, handle.provider)
            try:
                response = await self._call(request, request_id=handle.request_id)
                job = decipher_job(response, self._api, request_id=handle.request_id)
            except _PERMANENT:
                raise
            except RadientError as exc:  # transient: the job itself may be fine
                failures += 1
                if failures >= _MAX_POLL_FAILURES:
                    raise
                _log.debug("status poll of %s failed (%s); will poll again", handle.request_id, exc)
                hint = None
                continue
            failures = 0
            hint = poll_hint(response)
            if self._settle(handle, job, machine):
                if machine.state is JobStatus.COMPLETED:
                    self._durations.observe(time.monotonic() - handle.submitted_at)
                return

    # -- one API call: limits, rate gate, redirects, retries, one deadline ----------------------

    async def _call(self, request: HttpRequest, *, request_id: str | None = None) -> HttpResponse:
        """Send ``request`` with retries, all within one overall timeout.

        The deadline is passed down rather than enforced by a cancel scope: each attempt gets what
        is left of it as aiohttp's total timeout, and no wait (rate gate, request slot, backoff)
        may run past it. This keeps the common path free of per-call scope bookkeeping.
        """
        timeout = self._timeouts.request
        deadline = time.monotonic() + timeout
        try:
            return await self._attempts(request, deadline)
        except _OutOfTime:
            raise APITimeoutError(
                f"{request.method} {request.url}: no answer within {timeout:.1f}s "
                "(retries included)"
            ) from None

    async def _attempts(self, request: HttpRequest, deadline: float) -> HttpResponse:
        policy = self._retry
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._send(request, deadline)
            except APIConnectionError as exc:
                delay = backoff_delay(policy, attempt, self._rng)
                if time.monotonic() + delay >= deadline:
                    raise _OutOfTime from exc
                if attempt > policy.max_retries:
                    raise
                _log.debug(
                    "retry %d of %s %s in %.2fs: %s",
                    attempt,
                    request.method,
                    request.url,
                    delay,
                    exc,
                )
                await anyio.sleep(delay)
                continue
            status = response.status
            if status < 400:
                self._gate.succeeded()
                return response
            retry_after = parse_retry_after(response.headers)
            if status == 429:
                self._gate.throttled(retry_after)
            if not policy.should_retry_status(status) or attempt > policy.max_retries:
                return response
            if retry_after is not None and retry_after > policy.max_retry_after:
                return response  # fail fast: the caller sees RateLimitError with the wait
            delay = (
                retry_after
                if retry_after is not None
                else backoff_delay(policy, attempt, self._rng)
            )
            if time.monotonic() + delay >= deadline:
                return response
            _log.debug(
                "retry %d of %s %s after HTTP %d in %.2fs",
                attempt,
                request.method,
                request.url,
                status,
                delay,
            )
            await anyio.sleep(delay)

    async def _send(self, request: HttpRequest, deadline: float) -> HttpResponse:
        """One attempt: wait for the rate gate and a request slot, following safe redirects."""
        requests = self._requests
        for _ in range(_MAX_REDIRECTS + 1):
            started = time.monotonic()
            delay = self._gate.reserve()
            if started + delay >= deadline:
                raise _OutOfTime
            if delay > 0:
                await anyio.sleep(delay)
            try:
                await requests.acquire(deadline - time.monotonic())
            except TimeoutError:
                raise _OutOfTime from None
            try:
                response = await self._transport.send(
                    request,
                    max_bytes=self._limits.max_response_bytes,
                    timeout=max(0.001, deadline - time.monotonic()),
                )
            finally:
                requests.release()
            if _log.isEnabledFor(logging.DEBUG):
                _log.debug(
                    "%s %s -> %d in %.1f ms",
                    request.method,
                    request.url,
                    response.status,
                    (time.monotonic() - started) * 1000,
                )
            follow = redirect_for(request, response, self._api)
            if follow is None:
                return response
            request = follow
        raise APIConnectionError(f"{request.method} {request.url}: too many redirects")


class _OutOfTime(Exception):
    """A call's overall deadline has passed (becomes ``APITimeoutError``)."""


def _checked(name: str, value: Any, cls: type[Any]) -> Any:
    if value is None:
        return cls()
    if not isinstance(value, cls):
        raise ConfigurationError(f"{name} must be a {cls.__name__}, got {type(value).__name__}")
    return value


def _check_timeout(timeout: float | None, default: float) -> float:
    if timeout is None:
        return default
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValidationError("timeout", f"must be a positive number of seconds, got {timeout!r}")
    return float(timeout)
