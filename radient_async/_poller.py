"""Jobs: submit a generation, or re-attach to one, and watch it until its handle settles.

Each job owns one slot of ``Limits.jobs`` from before its submit until its handle settles, however
it settles (a result, a failure, its deadline, ``cancel()`` before or during a poll, the session
closing): the slot goes back exactly once. A watched job runs one task in the session's task group
(a batch item's job is watched in the item's own task instead); a job answered at once
(``sync_mode``) runs none. Poll failures never end a job early: each status
call retries until the job's deadline, and only a permanent answer or the deadline ends it.
The watcher of one job is ``_watch.Watch``; ``Jobs`` is the ``WatchHost`` it relies on.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from ._calls import Calls
from ._config import Timeouts
from ._convert import WireJob
from ._downloads import Downloader
from ._endpoint import ApiEndpoint, HttpResponse
from ._jobs import JobHandle
from ._models import (
    GenerationRequest,
    GenerationResult,
    Image,
)
from ._offload import Offload
from ._polling import FirstLook, PollPolicy, poll_delay
from ._protocol import JobAnswer, build_generate, check_answer, poll_hint
from ._slots import URGENT, Slots
from ._watch import JobSlot, Watch

__all__ = ["Jobs"]

Spawn = Callable[[Callable[[float | None], Coroutine[Any, Any, None]], float | None], object]


class Jobs:
    """Submits and watches a session's jobs through its ``Calls``."""

    def __init__(
        self,
        calls: Calls,
        api: ApiEndpoint,
        *,
        poll: PollPolicy,
        timeouts: Timeouts,
        slots: Slots,
        fetcher: Downloader,
        offload: Offload,
        rng: random.Random,
    ) -> None:
        self.calls = calls
        self._offload = offload
        self.api = api
        self.poll = poll
        self._timeouts = timeouts
        self._slots = slots
        self._fetcher = fetcher
        self._rng = rng
        self.first_look = FirstLook()
        self._waiting_to_learn: set[asyncio.Future[bool]] = set()
        self.spawn: Spawn | None = None

    async def submit(
        self,
        request: GenerationRequest,
        *,
        timeout: float | None = None,
        idempotency_key: str | None = None,
    ) -> JobHandle:
        """Send ``request`` (retried safely: it carries its ``Idempotency-Key``) and watch it.

        ``timeout`` is the job's deadline (default: the poll policy's).
        """
        watch, hint = await self._submit(request, timeout, idempotency_key)
        if not watch.feed.done:
            self._start(watch, hint)
        return watch.feed.handle

    async def submit_and_watch(
        self,
        request: GenerationRequest,
        *,
        idempotency_key: str | None,
        submitted: Callable[[JobHandle], Awaitable[None]],
    ) -> JobHandle:
        """Submit, let ``submitted`` note the job, then watch it in *this* task until it settles.

        For a caller that would only await the handle (a batch item): one task per job, not two.
        """
        watch, hint = await self._submit(request, None, idempotency_key)
        handle = watch.feed.handle
        try:
            await submitted(handle)
        except BaseException:
            handle.cancel()  # settles it: its job slot goes back
            raise
        if not watch.feed.done:
            await watch.run(hint)
        return handle

    async def _submit(
        self, request: GenerationRequest, timeout: float | None, idempotency_key: str | None
    ) -> tuple[Watch, float | None]:
        """Send the request; its watch (settled at once if the answer is final) and poll hint."""
        timeout = self.poll.timeout if timeout is None else timeout
        slot = JobSlot(self._slots)
        if not slot.try_take():  # a free slot costs no coroutine
            await slot.take()
        try:
            http = build_generate(self.api, request, idempotency_key or secrets.token_hex(16))
            submitted_at = self.calls.clock.now()
            # The send has Timeouts.request once its turn comes; the turn, the job's deadline.
            deadline = submitted_at + self._timeouts.request
            latest = submitted_at + timeout
            response = await self.calls.api(http, deadline=deadline, latest=latest, turn=URGENT)
            answer = self.read_now(response, None, request.num_images)
            if answer is None:
                answer = await self.read_off_loop(response, None, request.num_images)
            job, problem = answer
        except BaseException:
            slot.give_back()
            raise
        watch = Watch(self, job.request_id, job.provider or request.provider, request.prompt, slot)
        watch.max_images = request.num_images
        watch.start(submitted_at, timeout, started_at=response.sent_at or submitted_at)
        if problem is None:
            watch.settle(job)  # a final answer settles it; otherwise polls find the truth
        return watch, poll_hint(response)

    def attach(
        self, request_id: str, provider: str | None, *, timeout: float | None = None
    ) -> JobHandle:
        """Watch a job submitted earlier; its job slot is taken when its watcher starts."""
        timeout = self.poll.timeout if timeout is None else timeout
        watch = Watch(self, request_id, provider, None, JobSlot(self._slots), attach=True)
        watch.start(self.calls.clock.now(), timeout)
        self._start(watch, None)
        return watch.feed.handle

    def read_now(
        self, response: HttpResponse, request_id: str | None, max_images: int
    ) -> JobAnswer | None:
        """A job answer and whether it is believable, parsed here (the common small answer,
        no await); None: a large one, for ``read_off_loop``."""
        check_answer(response, self.api, request_id)
        return self._offload.read_small_job(response, request_id=request_id, max_images=max_images)

    async def read_off_loop(
        self, response: HttpResponse, request_id: str | None, max_images: int
    ) -> JobAnswer:
        """``read_now`` of a large answer, parsed in the decoding worker."""
        return await self._offload.read_job(response, request_id=request_id, max_images=max_images)

    async def save_images(
        self, images: tuple[Image, ...], directory: str, *, overwrite: bool
    ) -> list[tuple[str, int]]:
        """Save ``images`` into ``directory`` (already checked); (path, size) in image order."""
        return await self._fetcher.save_files(images, directory, overwrite=overwrite)

    def _start(self, watch: Watch, hint: float | None) -> None:
        assert self.spawn is not None, "Jobs.spawn is set when the session opens"
        self.spawn(watch.run, hint)  # no wrapper: one coroutine fewer per watched job

    def result_of(
        self, job: WireJob, prompt: str | None, provider: str | None, images: tuple[Image, ...]
    ) -> GenerationResult:
        """The ``GenerationResult`` for a completed job, with its images (``images_of``)."""
        return GenerationResult(
            request_id=job.request_id,
            provider=job.provider or provider,
            images=images,
            seed=job.seed,
            prompt=prompt,
            fetcher=self._fetcher,
        )

    def images_of(self, job: WireJob) -> tuple[Image, ...]:
        """The job's images, each able to download itself through the session."""
        return tuple(
            Image(
                url=image.url,
                width=image.width,
                height=image.height,
                content_type=image.content_type,
                request_id=job.request_id,
                index=index,
                fetcher=self._fetcher,
            )
            for index, image in enumerate(job.images or ())
        )

    async def wait_to_learn(self, timeout: float) -> bool:
        """Sleep until the session learns when to look first (True), at most ``timeout`` (False)."""
        woken: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting_to_learn.add(woken)
        try:
            return await self.calls.clock.until(woken, timeout)
        finally:
            self._waiting_to_learn.discard(woken)

    def seen_done(self, elapsed: float) -> None:
        """A job looked at on the policy's schedule was done ``elapsed`` seconds in."""
        if self.first_look.seen_done(elapsed):
            for woken in self._waiting_to_learn:
                if not woken.done():
                    woken.set_result(True)

    def delay(
        self, elapsed: float, hint: float | None, first: float | None, phase: float | None = None
    ) -> float:
        """The wait before the next poll of a job ``elapsed`` seconds old (a probe: ``phase``)."""
        return poll_delay(self.poll, elapsed, hint=hint, rng=self._rng, first=first, phase=phase)
