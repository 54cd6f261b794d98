"""Adaptive client-side rate limiting (AIMD), shared by every request a session sends.

Unlimited until the API answers 429. Every 429 holds back all new requests until the server's
``Retry-After`` has passed. The first 429 also slows the whole session: the allowed rate drops to
a fraction of what was actually being sent (multiplicative decrease), then climbs back linearly
while requests succeed (additive increase; faster once no 429 has come for ``quiet_after``
seconds) until it is far above demand and pacing switches off.
Once pacing, the rate is cut again only when 429s are more than a stray few (``trigger``: 5% of
the last second's answers), so scattered 429s (a flaky proxy, a fault injector) cannot compound
into a collapse of throughput. The state machine is pure (time is passed in); ``RateGate`` is the
async wrapper the session awaits.
"""

from __future__ import annotations

import collections
import time

import attrs

__all__ = ["AimdState", "RateGate"]


@attrs.define
class AimdState:
    """Pacing state: ``rate`` is requests/s, or None while unlimited."""

    decrease: float = 0.7
    recovery_per_second: float = 0.08
    min_rate: float = 1.0
    cooldown: float = 1.0
    trigger: float = 0.05
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

    def reserve(self, now: float) -> float:
        """Claim the next send slot; returns how long to wait before sending."""
        start = max(now, self.blocked_until)
        if self.rate is not None:
            start = max(start, self.next_send)
            self.next_send = start + 1.0 / self.rate
        self._record_send(start)
        return start - now

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
        self.blocked_until = max(self.blocked_until, now + wait)
        if now - self.last_decrease < self.cooldown:
            return
        if self.rate is not None and self.throttled_fraction() < self.trigger:
            return
        current = min(self.rate or float("inf"), max(self.observed_rate(), self.min_rate))
        self.rate = max(self.min_rate, current * self.decrease)
        self.ceiling = current
        self.last_decrease = self.last_update = now

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
    """The session-wide gate every API request passes: free while unlimited."""

    def __init__(self, state: AimdState | None = None) -> None:
        self.state = state or AimdState()

    def reserve(self) -> float:
        """Claim this request's send slot; returns the seconds to wait before sending."""
        return self.state.reserve(time.monotonic())

    def throttled(self, retry_after: float | None) -> None:
        """Report a 429 so every later request slows down."""
        self.state.on_throttled(time.monotonic(), retry_after)

    def succeeded(self) -> None:
        """Report a successful request so the rate may recover."""
        self.state.on_success(time.monotonic())
