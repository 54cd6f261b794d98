"""The call engine: the one place that sends requests, for API calls and downloads alike.

A call runs ``deadline → retries → (rate gate → slot → transport → redirects)``: every attempt
waits honestly for the session's rate gate and a slot (request or download), follows safe
redirects, and a transient failure (a connection error, a timeout, 408/409/425/429/5xx, a body cut
short) is retried with jittered exponential backoff or the server's ``Retry-After`` until the
call's deadline, each retry drawing on the session's ``RetryBudget``. Time spent waiting for the
session's own gate and slots pushes the deadline back (a call queued behind its own session's
traffic has not started yet), though never past the call's ``latest`` (a job's deadline).
A permanent answer ends the call at once; so does a ``Retry-After`` beyond ``max_retry_after``
(``RateLimitError`` with the wait). The rules are pure (``_retry``, ``_ratelimit``); this module
only applies them, on the session's clock.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

import attrs

from ._clock import Clock
from ._config import Limits, Timeouts
from ._endpoint import ApiEndpoint, HttpRequest, HttpResponse
from ._errors import (
    APIConnectionError,
    APITimeoutError,
    IntegrityError,
    RadientError,
)
from ._http import StreamedResponse, Transport
from ._protocol import error_for_response, redirect_for
from ._ratelimit import RateGate
from ._retry import RetryBudget, RetryPolicy, parse_retry_after, retry_delay
from ._slots import NORMAL, Slots

__all__ = ["Calls", "Transient"]

_log = logging.getLogger("radient_async")
_MAX_REDIRECTS = 5
T = TypeVar("T")


class Transient(Exception):
    """An attempt failed in a way a later identical attempt may get past."""

    def __init__(self, error: RadientError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


@attrs.define
class _Window:
    """The time a call has: ``end`` for its attempts and retries, pushed back by the time it
    waits for the session's own turn, but never past ``latest`` (nor any wait past it)."""

    end: float
    latest: float = math.inf

    def waited(self, seconds: float) -> None:
        """The call waited ``seconds`` for its turn: that time is not taken from its attempts."""
        self.end = max(self.end, min(self.end + seconds, self.latest))


# A stream handler reads one (non-redirect) response; it may raise ``Transient`` to retry.
StreamHandler = Callable[[HttpRequest, StreamedResponse], Awaitable[T]]
# One hop of an attempt under its timeout: the final answer, or the request a redirect names.
Exchange = Callable[[HttpRequest, float], Awaitable[HttpRequest | T]]


class Calls:
    """Sends a session's requests under its shared limits, rate gate and retry budget."""

    def __init__(
        self,
        transport: Transport,
        api: ApiEndpoint,
        *,
        limits: Limits,
        timeouts: Timeouts,
        retry: RetryPolicy,
        clock: Clock,
        rng: random.Random,
    ) -> None:
        self._transport = transport
        self._api = api
        self._limits = limits
        self._timeouts = timeouts
        self._retry = retry
        self.clock = clock
        self._rng = rng
        self.gate = RateGate(clock=clock)
        self.gate.state.max_block = retry.max_retry_after
        self.gate.state.cap = limits.requests_per_second
        self.budget = RetryBudget()
        self.requests = Slots(limits.requests)
        self.downloads = Slots(limits.downloads)

    def deadline_in(self, seconds: float) -> float:
        """The clock reading ``seconds`` from now."""
        return self.clock.now() + seconds

    # -- the two kinds of call -------------------------------------------------------------------

    async def api(
        self,
        request: HttpRequest,
        *,
        deadline: float,
        latest: float = math.inf,
        request_id: str | None = None,
        turn: int = NORMAL,
    ) -> HttpResponse:
        """An API call, retried until ``deadline``; the final response (maybe a permanent 4xx).

        Waiting for its turn pushes ``deadline`` back, up to ``latest``. A call of an earlier
        ``turn`` (``Slots``: a probe poll, a submit) takes the next free request slot first.
        """
        window = _Window(deadline, latest)
        exchange: Exchange[HttpResponse] = self._read_whole
        if request_id is not None:
            exchange = partial(self._read_whole, request_id=request_id)
        return await self._retrying(
            request, window, self.requests, exchange, cap=self._timeouts.request, turn=turn
        )

    async def stream(
        self, request: HttpRequest, *, deadline: float, handler: StreamHandler[T]
    ) -> T:
        """A download: ``handler`` reads the body under a download slot, retried to ``deadline``
        (pushed back by the time it waits for a slot)."""
        exchange = partial(self._read_streamed, handler=handler)
        return await self._retrying(request, _Window(deadline), self.downloads, exchange, cap=None)

    # -- retries ---------------------------------------------------------------------------------

    async def _retrying(
        self,
        request: HttpRequest,
        window: _Window,
        slots: Slots,
        exchange: Exchange[T],
        *,
        cap: float | None,
        turn: int = NORMAL,
    ) -> T:
        """Attempts (``_hops``) until one succeeds, a failure is permanent or time runs out."""
        number = 0
        while True:
            number += 1
            try:
                result = await self._hops(request, window, slots, exchange, cap=cap, turn=turn)
            except (APIConnectionError, IntegrityError) as exc:
                if isinstance(exc, _OutOfTime):
                    raise
                again = Transient(exc)
            except Transient as exc:
                again = exc
            else:
                if not self.budget.full:  # the common case needs no clock read
                    self.budget.succeeded(self.clock.now())
                return result
            await self._wait_to_retry(request, again, number, window.end)

    async def _wait_to_retry(
        self, request: HttpRequest, again: Transient, number: int, deadline: float
    ) -> None:
        """Sleep before retry ``number``, or raise the failure if no retry fits in the deadline."""
        delay = retry_delay(self._retry, number, again.retry_after, self._rng)
        if delay is None:
            raise again.error
        now = self.clock.now()
        delay = max(delay, self.budget.reserve(now))
        if now + delay >= deadline:
            raise again.error
        _log.debug(
            "retry %d of %s %s in %.2fs: %s", number, request.method, request.url, delay, again
        )
        await self.clock.sleep(delay)

    def _classify(self, response: HttpResponse, request_id: str | None, own: bool = True) -> None:
        """Feed the rate gate; raise ``Transient`` for an answer worth retrying."""
        status = response.status
        if status < 400:
            if own:
                self.gate.succeeded()
            return
        retry_after = parse_retry_after(response.headers)
        if status == 429 and own:
            self.gate.throttled(retry_after)
        if self._retry.should_retry_status(status):
            error = error_for_response(response, self._api, request_id=request_id)
            raise Transient(error, retry_after)

    # -- one attempt: gate, slot, transport, redirects -------------------------------------------

    async def _read_whole(
        self, hop: HttpRequest, timeout: float, request_id: str | None = None
    ) -> HttpRequest | HttpResponse:
        """An API call's hop: the whole answer (classified: ``Transient`` to retry), or the
        redirect to follow."""
        started = self.clock.now()
        response = await self._transport.send(
            hop, max_bytes=self._limits.max_response_bytes, timeout=timeout, sent_at=started
        )
        response = self._api.scrub(response)
        if _log.isEnabledFor(logging.DEBUG):
            elapsed = (self.clock.now() - started) * 1000
            _log.debug("%s %s -> %d in %.1f ms", hop.method, hop.url, response.status, elapsed)
        follow = redirect_for(hop, response, self._api)
        if follow is not None:
            return follow
        self._classify(response, request_id)
        return response

    async def _read_streamed(
        self, hop: HttpRequest, timeout: float, handler: StreamHandler[T]
    ) -> HttpRequest | T:
        """A download's hop: ``handler``'s reading of the body, or the redirect to follow."""
        with await self._transport.stream(hop, timeout=timeout) as response:
            head = HttpResponse(response.status, response.headers, b"", hop.url)
            follow = redirect_for(hop, head, self._api)
            if follow is not None:
                return follow
            self._classify(head, None, own=self._api.is_own_origin(hop.url))
            return await handler(hop, response)

    async def _hops(
        self,
        request: HttpRequest,
        window: _Window,
        slots: Slots,
        exchange: Exchange[T],
        *,
        cap: float | None,
        turn: int = NORMAL,
    ) -> T:
        """One attempt, following redirects; every hop waits for the gate and a slot.

        A hop may use what is left of the deadline, and at most ``cap`` seconds (API calls: one
        ``Timeouts.request``, so a poll's long job deadline never lets one attempt hang).
        """
        hop = request
        for _ in range(_MAX_REDIRECTS + 1):
            # The common case, a free gate and a free slot, costs no await (and no clock read).
            passed = self.gate.try_turn() if self._api.is_own_origin(hop.url) else True
            if not (passed and slots.try_acquire()):
                await self._admit(hop, window, slots, turn, gate_passed=passed)
            try:
                left = window.end - self.clock.now()
                if left <= 0:
                    raise _OutOfTime(hop, 0.0, "its turn")
                outcome = await exchange(hop, left if cap is None else min(left, cap))
            finally:
                slots.release()
            if not isinstance(outcome, HttpRequest):
                return outcome
            hop = outcome
        raise APIConnectionError(f"{request.method} {request.url}: too many redirects")

    async def _admit(
        self, hop: HttpRequest, window: _Window, slots: Slots, turn: int, *, gate_passed: bool
    ) -> None:
        """Wait for the rate gate (API origin only; unless ``gate_passed``) and a slot, at most
        until ``window.latest``; the time waited is given back to the call's window."""
        started = self.clock.now()
        latest = window.latest
        if not gate_passed and not await self.gate.wait_turn(latest):
            raise _OutOfTime(hop, self.clock.now() - started, "the rate limiter")
        timeout = None if latest == math.inf else max(0.0, latest - self.clock.now())
        try:
            await slots.acquire(timeout, turn=turn)
        except TimeoutError:
            raise _OutOfTime(hop, self.clock.now() - started, "a free slot") from None
        window.waited(self.clock.now() - started)


class _OutOfTime(APITimeoutError):
    """No turn to send before the call's deadline; says how long the call really waited."""

    def __init__(self, request: HttpRequest, waited: float, what: str) -> None:
        super().__init__(
            f"{request.method} {request.url}: no turn before the deadline after waiting "
            f"{waited:.1f}s for {what}"
        )
