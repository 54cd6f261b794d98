"""Adaptive client-side rate limiting (AIMD), shared by every request a session sends.

Unlimited until the API answers 429. Every 429 holds back all new requests until the server's
``Retry-After`` has passed (never longer than ``max_block``: a longer wait fails only the call that
got it). The first 429 also slows the whole session: the allowed rate drops to a fraction of the
rate the session was actually allowed (or, while unpaced, of what it was sending, never below
``floor``), then climbs back linearly while requests succeed (additive increase; faster once no 429
has come for ``quiet_after`` seconds) until it is far above demand and pacing switches off.
Once pacing, the rate is cut again only when 429s are more than a stray few (at least
``min_throttles`` of them, and ``trigger``: 10% of
the last second's answers), so scattered 429s (a flaky proxy, a fault injector) cannot compound
into a collapse of throughput. The state machine is pure (time is passed in); ``RateGate`` is the
async wrapper the session awaits.
"""

from __future__ import annotations

import asyncio
import collections

import anyio
import attrs

from ._clock import SYSTEM_CLOCK, Clock

__all__ = ["AimdState", "RateGate"]


@attrs.define
class AimdState:
    """Pacing state: ``rate`` is requests/s, or None while unlimited."""

    decrease: float = 0.7
    recovery_per_second: float = 0.08
    min_rate: float = 1.0
    floor: float = 10.0
    max_block: float = 60.0
    cooldown: float = 1.0
    trigger: float = 0.10
    min_throttles: int = 3
    rate: float | None = None
    ceiling: float = 0.0
    blocked_until: float = 0.0
    next_send: float = 0.0
    last_decrease: float = float("-inf")
    last_update: float = 0.0
    sends: collections.deque[float] = attrs.field(factory=collections.deque)
    answers: collections.deque[tuple[float, bool]] = attrs.field(factory=collections.deque)
    throttled_recently: int = 0
    last_throttle: float = float("-inf")
    quiet_after: float = 2.0
    cap: float | None = None  # a hard ceiling (requests/s) the adaptive rate never exceeds

    def pace(self) -> float | None:
        """The rate sends are spaced at now: the adaptive rate under the cap; None: unpaced."""
        if self.cap is None:
            return self.rate
        return self.cap if self.rate is None else min(self.rate, self.cap)

    def reserve(self, now: float, latest: float = float("inf")) -> float | None:
        """Claim a send slot if one is free now (0.0); else how long to wait before asking again.

        Nothing is claimed ahead of time, so queued callers see a recovering rate at once and a
        caller that gives up holds no one back; None when the next slot comes after ``latest``.
        """
        start = max(now, self.blocked_until)
        pace = self.pace()
        if pace is not None:
            start = max(start, self.next_send)
        if start > latest:
            return None
        if start > now:
            return start - now
        if pace is not None:
            self.next_send = now + 1.0 / pace
        self._record_send(now)
        return 0.0

    def take_now(self, now: float) -> bool:
        """``reserve(now) == 0.0``, by the short way while unpaced and unblocked (the common
        case, once per request): claim a send slot if one is free ``now``."""
        if now < self.blocked_until:
            return False
        if self.rate is None and self.cap is None:
            self._record_send(now)
            return True
        return self.reserve(now) == 0.0

    def _record_send(self, at: float) -> None:
        sends = self.sends
        sends.append(at)
        while sends and sends[0] < at - 1.0:
            sends.popleft()

    def observed_rate(self) -> float:
        """Requests sent in the last second: what the server actually saw from us."""
        return float(len(self.sends))

    def _record_answer(self, now: float, throttled: bool) -> None:
        answers = self.answers
        answers.append((now, throttled))
        self.throttled_recently += throttled
        while answers and answers[0][0] < now - 1.0:
            self.throttled_recently -= answers.popleft()[1]

    def throttled_fraction(self) -> float:
        """The share of the last second's answers that were 429."""
        return self.throttled_recently / len(self.answers) if self.answers else 0.0

    def on_throttled(self, now: float, retry_after: float | None) -> None:
        """A 429: block new sends for ``retry_after``; cut the rate if 429s are frequent."""
        self._record_answer(now, True)
        self.last_throttle = now
        wait = retry_after if retry_after is not None else 1.0
        self.blocked_until = max(self.blocked_until, now + min(wait, self.max_block))
        if now - self.last_decrease < self.cooldown:
            return
        if self.rate is not None and (
            self.throttled_recently < self.min_throttles or self.throttled_fraction() < self.trigger
        ):
            return  # a stray 429 or two (a flaky proxy, a fault injector): no evidence of a limit
        # Relative to what the session was allowed; while unpaced, to what it was sending, with a
        # floor, so one 429 on a quiet session cannot pin it to a request a second.
        current = self.rate if self.rate is not None else max(self.observed_rate(), self.floor)
        self.rate = max(self.min_rate, current * self.decrease)
        self.ceiling = current
        self.last_decrease = self.last_update = now

    @property
    def pacing(self) -> bool:
        """Whether the adaptive rate is on: only then does a success change anything."""
        return self.rate is not None

    def on_success(self, now: float) -> None:
        """A request got through: raise the rate linearly in time, or stop pacing entirely.

        Successes are only tallied while pacing, the only time the 429 share is consulted.
        """
        if self.rate is None:
            return
        self._record_answer(now, False)
        elapsed = now - self.last_update
        if elapsed <= 0:
            return
        self.last_update = now
        step = self.recovery_per_second * max(self.ceiling, self.min_rate)
        if now - self.last_throttle > self.quiet_after:  # no 429 for a while: probe up quickly
            step = max(step, 0.5 * self.rate)
        self.rate += step * elapsed
        if self.rate > 4 * max(self.ceiling, self.min_rate):
            self.rate = None


class RateGate:
    """The session-wide gate every API request passes: free while unlimited, FIFO while pacing.

    While pacing, callers queue in arrival order and only the head of the queue sleeps on the
    clock, for one slot at a time: a recovering rate speeds the queue up at once, nobody starves,
    and nothing is claimed ahead for a caller that may give up.
    """

    def __init__(self, state: AimdState | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.state = state or AimdState()
        self._clock = clock
        self._queue: collections.deque[asyncio.Future[None]] = collections.deque()

    def reserve(self, latest: float = float("inf")) -> float | None:
        """0.0 once this may go; else seconds to wait and ask again; None: past ``latest``."""
        return self.state.reserve(self._clock.now(), latest)

    def try_turn(self) -> bool:
        """Take this request's send slot if it is free right now, without waiting (the common
        case: unpaced, nobody queued); False means ``wait_turn``."""
        return not self._queue and self.state.take_now(self._clock.now())

    async def wait_turn(self, latest: float = float("inf")) -> bool:
        """Wait for this request's send slot, in FIFO order; False if none comes by ``latest``.

        The slow path behind ``try_turn`` (the call engine asks that first); correct, only slower,
        for a caller whose slot is free right now.
        """
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(turn)
        try:
            if self._queue[0] is not turn:
                with anyio.move_on_after(max(0.0, latest - self._clock.now())):
                    await turn
                if not turn.done() or turn.cancelled():
                    return False
            while (delay := self.reserve(latest)) is not None and delay > 0:
                await self._clock.sleep(delay)
            return delay is not None
        finally:
            head = self._queue[0] is turn
            self._queue.remove(turn)
            if head and self._queue and not self._queue[0].done():
                self._queue[0].set_result(None)

    def throttled(self, retry_after: float | None) -> None:
        """Report a 429 so every later request slows down."""
        self.state.on_throttled(self._clock.now(), retry_after)

    def succeeded(self) -> None:
        """Report a successful request so the rate may recover (unpaced: nothing to do)."""
        if self.state.rate is not None:  # pacing (``AimdState.pacing``), read once per request
            self.state.on_success(self._clock.now())
