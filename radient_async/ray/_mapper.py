"""``RadientMapper``: the callable class ``Dataset.map_batches`` runs on each actor of a pool.

Ray builds the class once per actor (``__init__`` runs outside the actor's event loop, so it only
stores settings) and awaits ``__call__`` for each batch on that actor's event loop, where the
first call opens the actor's one ``Session``; it serves every later batch on the actor. Ray Data
deletes the instance when the pool shuts down gracefully, and ``__del__`` closes the session on
its loop then; a killed actor (SIGKILL, ``ray.kill``, a lost node) runs nothing, and the OS closes
its sockets (the jobs it submitted live on; a re-run of its block re-attaches to them by key).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import anyio
import attrs
import pyarrow as pa

from radient_async import (
    BatchOutcome,
    ConfigurationError,
    Limits,
    PollPolicy,
    RetryPolicy,
    Session,
    Timeouts,
)
from radient_async.ray._budget import RateBudget
from radient_async.ray._rows import (
    IMAGE_MODES,
    ImageMode,
    Planned,
    RowResult,
    RowSpec,
    check_columns,
    error_row,
    plan_row,
    result_table,
)
from radient_async.ray._storage import Target, open_target

__all__ = ["RadientMapper"]

_NO_OUTCOME = RowResult(
    status="ERROR", error="the row produced no outcome", error_type="RadientError"
)

CLOSE_TIMEOUT = 10.0
"""Seconds ``close()`` waits for the session to close on the actor's loop."""


class RadientMapper:
    """Generate one image job per row: ``ds.map_batches(RadientMapper, batch_format="pyarrow",
    fn_constructor_kwargs={...}, compute=ray.data.ActorPoolStrategy(size=N), num_cpus=0)``.

    Batches are ``pyarrow.Table`` in and out. Each output row is its input row plus
    ``request_id``, ``status`` (COMPLETED, FAILED or ERROR), ``error``, ``error_type``,
    ``provider``, ``seed``, ``images`` (a list: saved paths, bytes or URLs, per ``images``) and
    the ``idempotency_key`` it was sent with. A row's failure is its row, never an exception (Ray
    would abort the whole dataset); only a batch the settings cannot read at all raises
    ``ConfigurationError``.

    ``run_id`` and the row's ``id_column`` value name the row's key: keep both stable and a
    restarted block, a resumed run or a second pass sends the same keys, and the server answers
    with the jobs it already made. ``attempt`` (default 0) mints new keys on purpose, to retry
    rows whose jobs failed. ``rate_budget`` caps this pool's API requests per second (see
    ``RateBudget``); ``limits``, ``timeouts``, ``retry`` and ``poll`` configure each actor's
    session. ``api_key=None`` reads ``RADIENT_API_KEY`` on the actor (a key passed here travels
    to the actors inside Ray's task specification).
    """

    def __init__(
        self,
        *,
        run_id: str,
        id_column: str,
        prompt_column: str = "prompt",
        columns: Sequence[str] = (),
        defaults: Mapping[str, Any] | None = None,
        images: ImageMode = "url",
        image_dir: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        limits: Limits | None = None,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        allow_insecure_http: bool = False,
        rate_budget: RateBudget | None = None,
        attempt: int = 0,
    ) -> None:
        if not isinstance(run_id, str) or not run_id:
            raise ConfigurationError(f"run_id must be a non-empty string, got {run_id!r}")
        if images not in IMAGE_MODES:
            raise ConfigurationError(f"images must be one of {IMAGE_MODES}, got {images!r}")
        if (images == "path") != (image_dir is not None):
            raise ConfigurationError('image_dir is needed with images="path", and only then')
        if rate_budget is not None and not isinstance(rate_budget, RateBudget):
            raise ConfigurationError(f"rate_budget must be a RateBudget, got {rate_budget!r}")
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
            raise ConfigurationError(f"attempt must be an int >= 0, got {attempt!r}")
        self._spec = RowSpec(
            id_column=id_column,
            prompt_column=prompt_column,
            columns=columns,
            defaults=defaults or {},
        )
        self._run_id = run_id
        self._attempt = attempt
        self._images: ImageMode = images
        self._image_dir = image_dir
        self._storage_options = dict(storage_options or {})
        self._session_args: dict[str, Any] = {
            "api_key": api_key,
            "base_url": base_url,
            "limits": limits,
            "timeouts": timeouts,
            "retry": retry,
            "poll": poll,
            "allow_insecure_http": allow_insecure_http,
        }
        self._rate_budget = rate_budget
        # Set on the actor's loop by the first batch.
        self._session: Session | None = None
        self._opening: asyncio.Lock | None = None
        self._target: Target | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    def __repr__(self) -> str:
        state = "open" if self._session is not None else "not started"
        return f"<RadientMapper run {self._run_id} images={self._images} {state}>"

    # -- the batch -------------------------------------------------------------------------------

    async def __call__(self, batch: pa.Table) -> pa.Table:
        """The batch's rows with their results, in input order; one row out for each row in."""
        check_columns(batch.schema.names, self._spec)
        results: list[RowResult] = []
        planned: list[Planned] = []
        for index, row in enumerate(batch.to_pylist()):
            plan = plan_row(index, row, self._spec, self._run_id, self._attempt)
            results.append(_NO_OUTCOME if isinstance(plan, Planned) else plan)
            if isinstance(plan, Planned):
                planned.append(plan)
        if planned:
            session = await self._open_session()
            await self._generate(session, planned, results)
        return result_table(batch, results, self._images)

    async def _generate(
        self, session: Session, planned: Sequence[Planned], results: list[RowResult]
    ) -> None:
        """Run the rows concurrently under the session's limits; fill in each row's result."""
        local_dir = self._image_dir if self._images == "path" and self._is_local() else None
        items = [plan.item for plan in planned]
        outcomes = session.map(items, download_to=local_dir, overwrite=True)
        async with anyio.create_task_group() as group:
            async for outcome in outcomes:
                plan = planned[outcome.index]
                group.start_soon(self._finish, plan, outcome, results)

    async def _finish(self, plan: Planned, outcome: BatchOutcome, results: list[RowResult]) -> None:
        """The row's result: its images as the caller asked; any failure is the row's own."""
        try:
            if outcome.error is not None:
                raise outcome.error
            result = outcome.unwrap()
            images = await self._images_of(outcome)
        except Exception as exc:
            results[plan.index] = error_row(exc, key=plan.key, request_id=outcome.request_id)
            return
        results[plan.index] = RowResult(
            status="COMPLETED",
            key=plan.key,
            request_id=result.request_id,
            provider=result.provider,
            seed=result.seed,
            images=images,
        )

    async def _images_of(self, outcome: BatchOutcome) -> tuple[str, ...] | tuple[bytes, ...]:
        result = outcome.unwrap()
        if self._images == "url":
            return tuple(image.url for image in result.images)
        if self._images == "path" and self._is_local():
            return outcome.paths  # saved by session.map: streamed, size-checked, atomic
        data = [await image.read() for image in result.images]
        if self._images == "bytes":
            return tuple(data)
        target = self._storage()
        paths = [target.path(image.filename) for image in result.images]
        for path, content in zip(paths, data, strict=True):
            await anyio.to_thread.run_sync(target.put_atomic, path, content)
        return tuple(target.fs.unstrip_protocol(path) for path in paths)

    # -- the actor's session -----------------------------------------------------------------------

    def _storage(self) -> Target:
        if self._target is None:
            assert self._image_dir is not None
            self._target = open_target(self._image_dir, self._storage_options)
        return self._target

    def _is_local(self) -> bool:
        return self._storage().is_local

    async def _open_session(self) -> Session:
        """The actor's one session, opened on first use on this (the actor's) event loop."""
        if self._session is not None:
            return self._session
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._session is None:
                if self._image_dir is not None and self._is_local():
                    await anyio.to_thread.run_sync(
                        self._storage().fs.makedirs, self._image_dir, True
                    )
                self._loop = asyncio.get_running_loop()
                self._loop_thread = threading.get_ident()
                self._session = await Session(**self._session_settings()).open()
        return self._session

    def _session_settings(self) -> dict[str, Any]:
        """The actor's session settings, its share of the pool's rate budget as a ceiling."""
        settings = dict(self._session_args)
        if self._rate_budget is not None:
            limits = settings["limits"] or Limits()
            share = self._rate_budget.per_actor
            settings["limits"] = attrs.evolve(limits, requests_per_second=share)
        return settings

    async def aclose(self) -> None:
        """Close the actor's session (on its own loop); the mapper may open a new one later."""
        session, self._session = self._session, None
        if session is not None:
            await session.aclose()

    def close(self) -> None:
        """Close the session from another thread than its loop's, waiting up to 10 s.

        Called by ``__del__`` when Ray Data shuts the pool down gracefully. From the loop's own
        thread it cannot wait; use ``await aclose()`` there.
        """
        loop = self._loop
        if self._session is None or loop is None or loop.is_closed() or not loop.is_running():
            return
        if threading.get_ident() == self._loop_thread:
            return
        future = asyncio.run_coroutine_threadsafe(self.aclose(), loop)
        with contextlib.suppress(Exception):
            future.result(timeout=CLOSE_TIMEOUT)

    def __del__(self) -> None:
        self.close()
