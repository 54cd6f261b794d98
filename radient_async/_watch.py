"""``Watch``: one job's watcher, from its submit until its handle settles, and its job slot.

A watch polls on the schedule its host (``Jobs``) keeps for the whole session, feeds each answer
to the job's status machine and settles the handle through its ``JobFeed``. It needs a few
things of its host, named by ``WatchHost``, so this module imports nothing of ``Jobs``.
"""

from __future__ import annotations

import enum
import logging
from typing import Protocol

import anyio

from ._calls import Calls
from ._convert import WireJob
from ._endpoint import ApiEndpoint, HttpResponse
from ._errors import (
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    JobCancelled,
    JobFailed,
    JobTimeout,
    MalformedResponseError,
    NotFoundError,
    PermissionDeniedError,
    RadientError,
    UnexpectedStatusError,
)
from ._jobs import JobFeed, open_job
from ._models import MAX_NUM_IMAGES, GenerationResult, Image, JobStatus, JobUpdate
from ._polling import FirstLook, PollPolicy
from ._protocol import JobAnswer, build_status, poll_hint
from ._slots import LEAD, NORMAL, Slots
from ._status import StatusMachine, Step, parse_status

__all__ = ["JobSlot", "Watch", "WatchHost"]

_log = logging.getLogger("radient_async")
# Answers that end a job's polling at once; anything else is polled again until the deadline.
_MAX_INCOHERENT = 3  # answers that cannot be true before the job fails with that error
_PERMANENT = (AuthenticationError, PermissionDeniedError, NotFoundError, BadRequestError)


class Look(enum.Enum):
    """What a poll is, for what the session learns from it."""

    SCHEDULED = "scheduled"  # on the policy's schedule (or a server hint): may be seen done
    FIRST = "first"  # a first look at the time the session learned (``FirstLook.plan``)
    AGAIN = "again"  # the second look after a first look that missed (``plan_again``)


class WatchHost(Protocol):
    """What a watch uses of the session's ``Jobs``: its calls, its poll schedule, what it has
    learned about job durations, and how answers become typed values."""

    calls: Calls
    api: ApiEndpoint
    poll: PollPolicy
    first_look: FirstLook

    def delay(
        self, elapsed: float, hint: float | None, first: float | None, phase: float | None = None
    ) -> float: ...

    async def wait_to_learn(self, timeout: float) -> bool: ...

    def seen_done(self, elapsed: float) -> None: ...

    def read_now(
        self, response: HttpResponse, request_id: str | None, max_images: int
    ) -> JobAnswer | None: ...

    async def read_off_loop(
        self, response: HttpResponse, request_id: str | None, max_images: int
    ) -> JobAnswer: ...

    def images_of(self, job: WireJob) -> tuple[Image, ...]: ...

    def result_of(
        self, job: WireJob, prompt: str | None, provider: str | None, images: tuple[Image, ...]
    ) -> GenerationResult: ...


class JobSlot:
    """One job's hold on ``Limits.jobs``: taken once, given back once."""

    __slots__ = ("_held", "_slots")

    def __init__(self, slots: Slots) -> None:
        self._slots = slots
        self._held = False

    def try_take(self) -> bool:
        """Take a free slot now, without waiting (True), as every job does while slots last."""
        self._held = self._slots.try_acquire()
        return self._held

    async def take(self) -> None:
        """Take a slot, waiting for one if none is free (``acquire`` takes a free one at once)."""
        await self._slots.acquire()
        self._held = True

    def give_back(self) -> None:
        if self._held:
            self._held = False
            self._slots.release()


class Watch:
    """One job: its slot, its status machine, its handle's feed, and (when polled) its task."""

    __slots__ = (
        "attach",
        "deadline",
        "feed",
        "incoherent_answers",
        "jobs",
        "machine",
        "max_images",
        "peers",
        "phase",
        "planning",
        "prompt",
        "provider",
        "request_id",
        "scope",
        "settling",
        "slot",
        "started_at",
        "timeout",
    )

    def __init__(
        self,
        jobs: WatchHost,
        request_id: str,
        provider: str | None,
        prompt: str | None,
        slot: JobSlot,
        *,
        attach: bool = False,
    ) -> None:
        self.jobs = jobs
        self.request_id = request_id
        self.provider = provider
        self.prompt = prompt
        self.slot = slot
        self.attach = attach
        self.machine = StatusMachine(max_unknown=jobs.poll.max_unknown)
        self.max_images = MAX_NUM_IMAGES  # the request's num_images, when this session sent it
        self.incoherent_answers = 0
        self.settling = False  # True while settle() reports to the handle
        self.planning = False  # the next look is a first look, planned from what was learned
        # A probe (polling on the policy's schedule to learn how long jobs take) has a phase of
        # that schedule (``probe_delay``); any other job has none.
        self.phase: float | None = None
        self.peers = 0  # jobs watched when its first look was planned; 0: not counted in them
        self.started_at = 0.0  # when the server got the job (as the submit left), session clock
        self.scope: anyio.CancelScope | None = None
        self.deadline = 0.0
        self.timeout = 0.0

    def start(
        self, submitted_at: float, timeout: float, *, started_at: float | None = None
    ) -> None:
        """Open the job's handle; its deadline counts from ``submitted_at``, its age from
        ``started_at`` (when the submit left; default: ``submitted_at``)."""
        self.deadline = submitted_at + timeout
        self.started_at = submitted_at if started_at is None else started_at
        self.timeout = timeout
        _, self.feed = open_job(
            self.request_id,
            self.provider,
            prompt=self.prompt,
            submitted_at=submitted_at,
            on_finish=self.finished,
        )

    def finished(self) -> None:
        """The handle settled (maybe by ``cancel()``): stop polling, give the slot back.

        When the watch settled it itself, its poll loop returns anyway: cancelling the scope it
        runs in would only cost anyio a round of cancellation delivery.
        """
        if self.scope is not None and not self.settling:
            self.scope.cancel()
        self.slot.give_back()

    def settle(self, job: WireJob) -> bool:
        """Feed one observation to the handle; True once the handle has its outcome."""
        step = self.machine.observe(job.status)
        feed: JobFeed = self.feed
        self.settling = True
        try:
            self._report(job, step, feed)
        finally:
            self.settling = False
        return feed.done

    def _report(self, job: WireJob, step: Step, feed: JobFeed) -> None:
        """Tell the handle what the answer says: an update, and its outcome once final."""
        error = job.error  # already scrubbed of the key, as is every API answer (Calls)
        images = self.jobs.images_of(job)  # one set, shared by the update and the result
        feed.observe(
            JobUpdate(
                request_id=job.request_id,
                status=self.machine.observed,  # ``settle`` has just parsed job.status
                raw_status=job.status,
                provider=job.provider,
                images=images,
                error=error,
                seed=job.seed,
            )
        )
        if step is Step.COMPLETE:
            feed.resolve(self.jobs.result_of(job, self.prompt, feed.handle.provider, images))
        elif step is Step.FAIL:
            feed.reject(JobFailed(job.request_id, error))
        elif step is Step.GIVE_UP:
            feed.reject(UnexpectedStatusError(job.request_id, job.status))

    async def run(self, hint: float | None) -> None:
        """Poll until the handle settles, in the session's task group or in a batch item's own
        task (``submit_and_watch``). Never raises, except the cancellation that stops it."""
        if self.feed.done:
            return  # cancelled before its task started
        scope = self.scope = anyio.CancelScope()
        try:
            with scope:
                if self.attach:
                    await self.slot.take()
                await self._poll(hint)
        except anyio.get_cancelled_exc_class():
            self.feed.reject(JobCancelled(self.request_id, "the session closed"))
            raise
        except RadientError as exc:
            self.feed.reject(exc)
        except Exception as exc:  # a bug must not take the session's task group down
            _log.exception("internal error while polling %s", self.request_id)
            error = RadientError(f"internal error while polling: {exc!r}")
            error.__cause__ = exc
            self.feed.reject(error)
        finally:
            self.slot.give_back()
        if not self.feed.done:  # only our own scope was cancelled: cancel() got here first
            self.feed.reject(JobCancelled(self.request_id, "cancelled"))

    async def _poll(self, hint: float | None) -> None:
        clock = self.jobs.calls.clock
        failure: RadientError | None = None  # the last poll's, while polls are failing
        self.planning = hint is None and not self.attach  # first look: what the session learned
        answered = (Look.SCHEDULED, 0.0)  # what the last answered look was, and its age
        try:
            while True:
                delay, look = await self._next_delay(hint, answered)
                now = clock.now()
                if now + delay >= self.deadline:
                    await clock.sleep(self.deadline - now)
                    raise self._timeout(failure) from failure
                await clock.sleep(delay)
                answered = (Look.SCHEDULED, 0.0)
                try:
                    job, problem, hint, sent_at = await self._status()
                except _PERMANENT:
                    raise
                except RadientError as exc:
                    failure, hint = self._unreadable(exc, failure), None
                    continue
                failure = None
                self.planning = self.planning and hint is None
                if problem is not None:  # maybe a moment before the images are listed: look again
                    failure = self._unbelievable(problem)
                    continue
                self._learn(job, look, sent_at)
                if self.settle(job):
                    return
                answered = (look, sent_at - self.started_at)
        finally:
            if self.peers:
                self.jobs.first_look.ended(probe=self.phase is not None)

    async def _next_delay(
        self, hint: float | None, answered: tuple[Look, float]
    ) -> tuple[float, Look]:
        """The wait before the next look (``answered``: what the last answered look was, and
        the job's age then), and what that look is. While the session's probes are still
        learning, waits without polling (looking once every ``max_interval`` should they take
        long). Learned looks are not jittered: they are as spread as the submits were."""
        jobs, clock, policy = self.jobs, self.jobs.calls.clock, self.jobs.poll
        while self.planning:
            elapsed = clock.now() - self.started_at
            wait = jobs.first_look.plan(policy, elapsed=elapsed)
            if wait is not None:
                self.planning, self.peers = False, jobs.first_look.watching
                if jobs.first_look.at is None:  # nothing learned yet: this job probes
                    self.phase = jobs.first_look.probe_phase()
                    return jobs.delay(elapsed, None, None, self.phase), Look.SCHEDULED
                return wait, Look.FIRST if wait > 0 else Look.SCHEDULED  # past it: just look
            patience = jobs.delay(elapsed, None, policy.max_interval)
            if not await jobs.wait_to_learn(min(patience, self.deadline - clock.now())):
                return 0.0, Look.SCHEDULED
        elapsed = clock.now() - self.started_at
        look, age = answered
        if look is Look.FIRST and hint is None:  # it missed: look again soon, as learned
            wait = jobs.first_look.plan_again(policy, first=age, elapsed=elapsed)
            if wait is not None:
                return wait, Look.AGAIN
        return jobs.delay(elapsed, hint, None, self.phase), Look.SCHEDULED

    def _learn(self, job: WireJob, look: Look, sent_at: float) -> None:
        """What this look teaches the session about when to look at a job first, and again.

        Times are the job's age when the poll *left* (``sent_at``), from when the server got the
        job: a poll that queued behind a thousand submits must not teach that jobs are slow.
        """
        if self.attach:
            return  # a re-attached job's age is unknown
        done = parse_status(job.status) in (JobStatus.COMPLETED, JobStatus.FAILED)
        age = sent_at - self.started_at
        if look is Look.FIRST and age > 0:
            self.jobs.first_look.looked(done, age, peers=self.peers)
        elif look is Look.AGAIN and age > 0:
            self.jobs.first_look.looked_again(self.jobs.poll, done, age, peers=self.peers)
        elif done:
            self.jobs.seen_done(age)

    def _unreadable(self, exc: RadientError, failure: RadientError | None) -> RadientError:
        """A poll failed: poll on (returning the failure to remember), or time out at the end."""
        if self.jobs.calls.clock.now() >= self.deadline - 0.05:
            # A poll the deadline itself cut short (no turn, or its attempt timed out at the
            # deadline) says less than the real failure before it.
            cut = isinstance(exc, APITimeoutError)
            last = failure if cut and failure is not None else exc
            raise self._timeout(last) from last
        _log.debug("status of %s unreadable (%s); polling on", self.request_id, exc)
        return exc

    def _unbelievable(self, problem: MalformedResponseError) -> MalformedResponseError:
        """An answer that cannot be true: look again, or fail after ``_MAX_INCOHERENT``."""
        self.incoherent_answers += 1
        if self.incoherent_answers >= _MAX_INCOHERENT:
            raise problem
        _log.debug("status of %s not believable (%s); polling on", self.request_id, problem)
        return problem

    async def _status(
        self,
    ) -> tuple[WireJob, MalformedResponseError | None, float | None, float]:
        """One status poll: the answer, why it is not believable (or None), the server's hint,
        and when the poll left."""
        jobs = self.jobs
        request = build_status(jobs.api, self.request_id, self.feed.handle.provider)
        deadline = self.deadline  # a poll retries, and waits its turn, until the job's deadline
        # A probe's look goes before queued submits: every waiting job's first look is learned
        # from it (behind 10,000 submits, a 5 s job's first probe look left 6.6 s in).
        turn = NORMAL if self.phase is None else LEAD
        response = await jobs.calls.api(
            request, deadline=deadline, latest=deadline, request_id=self.request_id, turn=turn
        )
        answer = jobs.read_now(response, self.request_id, self.max_images)
        if answer is None:
            answer = await jobs.read_off_loop(response, self.request_id, self.max_images)
        job, problem = answer
        return job, problem, poll_hint(response), response.sent_at or jobs.calls.clock.now()

    def _timeout(self, failure: RadientError | None) -> JobTimeout:
        last = "" if failure is None else str(failure)
        return JobTimeout(self.request_id, self.timeout, self.feed.handle.status.value, last)
