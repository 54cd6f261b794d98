"""``Session``: the async entry point that glues the pure core to the transport.

A session owns one aiohttp connection pool, one anyio task group for every background poller, the
shared limits (jobs, API requests, downloads) and the adaptive rate gate. Nothing is global: two
sessions, or sessions in successive ``asyncio.run`` calls, share nothing.
"""

from __future__ import annotations

import asyncio
import enum
import os
import random as _random
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from types import TracebackType
from typing import Any

import anyio
import anyio.abc

from ._batch import run_batch
from ._batch_items import BatchItem, BatchOutcome
from ._calls import Calls
from ._clock import SYSTEM_CLOCK, Clock
from ._config import Limits, Timeouts
from ._downloads import Downloader
from ._endpoint import ApiEndpoint, Secret
from ._errors import ConfigurationError, SessionClosedError, ValidationError
from ._file_worker import FileWorker
from ._http import Transport
from ._jobs import JobHandle
from ._keys import check_idempotency_key
from ._models import GenerationRequest, GenerationResult, ImageSize
from ._offload import Offload
from ._poller import Jobs
from ._polling import PollPolicy
from ._progress import ProgressSpec
from ._protocol import build_providers, decipher_providers
from ._retry import RetryPolicy
from ._slots import Slots
from ._sources import SourceInput, resolve_source
from ._validate import argument, seconds

__all__ = ["DEFAULT_BASE_URL", "Session"]

DEFAULT_BASE_URL = "https://api.radient.com/v1"


class _State(enum.Enum):
    NEW = "new"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class Session:
    """An open connection to the Radient API: ``async with Session() as session`` or
    ``session = await Session().open()`` … ``await session.aclose()`` (from any task).

    ``api_key`` and ``base_url`` default to ``RADIENT_API_KEY`` and ``RADIENT_BASE_URL`` (read when
    the session is created, never at import). Every value is checked here, before any network call.
    ``timeout`` and ``max_retries`` are shortcuts for ``Timeouts(request=…)`` and
    ``RetryPolicy(max_retries=…)``. ``clock`` and ``random`` are seams for tests in virtual time.
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
        timeout: float | None = None,
        max_retries: int | None = None,
        allow_insecure_http: bool = False,
        fsync_downloads: bool = False,
        clock: Clock | None = None,
        random: _random.Random | None = None,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get("RADIENT_API_KEY")
        if isinstance(key, str):  # keep the key out of this frame's locals in tracebacks
            key = api_key = Secret(key)
        url = base_url if base_url is not None else os.environ.get("RADIENT_BASE_URL")
        if not key:
            raise ConfigurationError("no API key", remedy="api_key")
        for name, flag in (
            ("allow_insecure_http", allow_insecure_http),
            ("fsync_downloads", fsync_downloads),
        ):
            if not isinstance(flag, bool):
                raise ConfigurationError(f"{name} must be True or False, got {flag!r}")
        self._api = ApiEndpoint.create(
            url or DEFAULT_BASE_URL, key, allow_insecure_http=allow_insecure_http
        )
        self._timeouts: Timeouts = _shortcut(
            "timeouts", timeouts, Timeouts, "timeout", timeout, "request"
        )
        self._retry: RetryPolicy = _shortcut(
            "retry", retry, RetryPolicy, "max_retries", max_retries, "max_retries"
        )
        self._poll: PollPolicy = _checked("poll", poll, PollPolicy)
        self._limits: Limits = _checked("limits", limits, Limits)
        clock = _checked("clock", clock, Clock, SYSTEM_CLOCK)
        rng = _checked("random", random, _random.Random, _random.Random())
        self._transport = Transport(self._limits, self._timeouts)
        self._calls = Calls(
            self._transport,
            self._api,
            limits=self._limits,
            timeouts=self._timeouts,
            retry=self._retry,
            clock=clock,
            rng=rng,
        )
        self._file_worker = FileWorker()
        downloader = Downloader(
            self._calls,
            self._api,
            limits=self._limits,
            timeouts=self._timeouts,
            fsync=fsync_downloads,
            worker=self._file_worker,
        )
        self._offload = Offload()
        self._jobs = Jobs(
            self._calls,
            self._api,
            poll=self._poll,
            timeouts=self._timeouts,
            slots=Slots(self._limits.jobs),
            fetcher=downloader,
            offload=self._offload,
            rng=rng,
        )
        self._group: anyio.abc.TaskGroup | None = None
        self._host: asyncio.Task[None] | None = None
        self._stop: anyio.Event | None = None
        self._state = _State.NEW

    # -- lifecycle ------------------------------------------------------------------------------

    async def open(self) -> Session:
        """Open the connection pool and the task group the session's pollers run in.

        The task group lives in a task of the session's own, so the session may be closed by any
        task (a pytest fixture's teardown, a later notebook cell, a web app's lifespan).
        """
        if self._state is not _State.NEW:
            raise SessionClosedError("a Session can be opened only once; create a new one")
        self._state = _State.OPEN  # from here on, aclose() undoes whatever was opened
        try:
            await self._transport.open()
            ready, self._stop = anyio.Event(), anyio.Event()
            self._host = asyncio.get_running_loop().create_task(
                self._run_group(ready, self._stop), name=f"radient-session {self._api.base_url}"
            )
            await ready.wait()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def _run_group(self, ready: anyio.Event, stop: anyio.Event) -> None:
        """Host the session's task group until ``aclose()``; pollers never raise into it."""
        async with anyio.create_task_group() as group:
            self._group = group
            self._jobs.spawn = group.start_soon
            ready.set()
            await stop.wait()
            group.cancel_scope.cancel()

    async def aclose(self) -> None:
        """Stop every poller (their handles raise ``JobCancelled``) and close the pool.

        Safe from any task of the session's event loop, and safe to call twice.
        """
        if self._state in (_State.CLOSING, _State.CLOSED):
            return
        self._state = _State.CLOSING
        with anyio.CancelScope(shield=True):
            try:
                if self._stop is not None and self._host is not None:
                    self._stop.set()
                    await self._host
            finally:
                self._group = None
                await self._offload.aclose()
                await self._file_worker.aclose()
                await self._transport.close()
                self._state = _State.CLOSED

    async def __aenter__(self) -> Session:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the session; an exception from the body propagates as itself."""
        await self.aclose()

    @property
    def base_url(self) -> str:
        """The API base URL this session talks to."""
        return self._api.base_url

    @property
    def limits(self) -> Limits:
        """The shared caps in force."""
        return self._limits

    def __repr__(self) -> str:
        return f"<Session {self._api.base_url} {self._state.value}>"

    def _check_open(self) -> anyio.abc.TaskGroup:
        if self._group is None or self._state is not _State.OPEN:
            raise SessionClosedError(
                f"the session is {self._state.value}; use it inside `async with Session(...)`"
            )
        return self._group

    # -- public API -----------------------------------------------------------------------------

    async def providers(self) -> tuple[str, ...]:
        """The provider ids the API offers."""
        self._check_open()
        deadline = self._calls.deadline_in(self._timeouts.request)
        response = await self._calls.api(build_providers(self._api), deadline=deadline)
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
        idempotency_key: str | None = None,
    ) -> JobHandle:
        """Submit one generation and return its ``JobHandle``; polling runs in the background.

        ``prompt`` may be a ``GenerationRequest`` built beforehand (then give no other fields).
        ``source`` (a path, bytes, file object, PIL image, URL or ``data:`` URI) makes it
        image-to-image. ``timeout`` overrides the poll policy's job deadline.
        ``idempotency_key`` (default: a random one) makes the submit safe to repeat from any
        process: the server answers a key it has seen with the job it already made for it.
        """
        self._check_open()
        deadline = _check_timeout(timeout, self._poll.timeout)
        if idempotency_key is not None:
            check_idempotency_key(idempotency_key)
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
        return await self._jobs.submit(request, timeout=deadline, idempotency_key=idempotency_key)

    async def generate(self, prompt: str | GenerationRequest, **fields: Any) -> GenerationResult:
        """Submit and wait: ``submit(...)`` then ``await`` the handle."""
        return await (await self.submit(prompt, **fields))

    def job(
        self, request_id: str, provider: str | None = None, *, timeout: float | None = None
    ) -> JobHandle:
        """Re-attach to a job submitted earlier (another process, a restarted notebook).

        ``timeout`` is how long to watch it from now (default: the poll policy's job deadline).
        """
        self._check_open()
        _check_id("request_id", request_id)
        if provider is not None:
            _check_id("provider", provider)
        deadline = _check_timeout(timeout, self._poll.timeout)
        return self._jobs.attach(request_id, provider, timeout=deadline)

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
        this batch's items in flight (default: the session's job limit; more than it is refused
        with ``ValidationError`` before the batch starts, never silently capped).
        ``ordered=True`` yields in input order. ``fail_fast=True`` raises the first item's error
        instead of yielding it.
        ``manifest`` makes the batch resumable; ``progress`` turns on reporting (``True``,
        ``"tqdm"``, ``"rich"``, a callable or a sink).
        Leaving the loop early cancels everything outstanding.
        """
        group = self._check_open()
        return run_batch(
            self._jobs,
            items,
            limits=self._limits,
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


def _checked(name: str, value: Any, cls: type[Any], default: Any = None) -> Any:
    if value is None:
        return cls() if default is None else default
    if not isinstance(value, cls):
        raise ConfigurationError(f"{name} must be a {cls.__name__}, got {type(value).__name__}")
    return value


def _shortcut(
    name: str, value: Any, cls: type[Any], short: str, short_value: Any, field: str
) -> Any:
    """A policy object, or one built from its shortcut keyword (not both)."""
    if short_value is None:
        return _checked(name, value, cls)
    if value is not None:
        raise ConfigurationError(f"give {name}= or {short}=, not both")
    return cls(**{field: short_value})


def _check_id(name: str, value: object) -> None:
    """An id that goes into a URL: a non-empty string without control characters."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(name, f"must be a non-empty string, got {value!r}")
    if not value.isprintable():
        raise ValidationError(name, "must not contain control characters")


def _check_timeout(timeout: float | None, default: float) -> float:
    if timeout is None:
        return default
    argument("timeout", timeout, seconds())
    return float(timeout)
