"""Adaptive client-side rate limiting (AIMD), shared by every request a session sends.

Unlimited until the API answers 429. Then the whole session slows down: the allowed rate drops to a
fraction of what was actually being sent (multiplicative decrease), nothing new is sent until the
server's ``Retry-After`` has passed, and the rate climbs back linearly while requests succeed
(additive increase) until it is far above demand and pacing switches off again. The state machine is
pure (time is passed in); ``RateGate`` is the async wrapper the session awaits.
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
    rate: float | None = None
    ceiling: float = 0.0
    blocked_until: float = 0.0
    next_send: float = 0.0
    last_decrease: float = float("-inf")
    last_update: float = 0.0
    sends: collections.deque[float] = attrs.field(factory=collections.deque)

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

    def on_throttled(self, now: float, retry_after: float | None) -> None:
        """A 429: block new sends for ``retry_after`` and cut the rate, once per cooldown."""
        wait = retry_after if retry_after is not None else 1.0
        self.blocked_until = max(self.blocked_until, now + wait)
        if now - self.last_decrease < self.cooldown:
            return
        current = min(self.rate or float("inf"), max(self.observed_rate(), self.min_rate))
        self.rate = max(self.min_rate, current * self.decrease)
        self.ceiling = current
        self.last_decrease = self.last_update = now

    def on_success(self, now: float) -> None:
        """A request got through: raise the rate linearly in time, or stop pacing entirely."""
        if self.rate is None:
            return
        elapsed = now - self.last_update
        if elapsed <= 0:
            return
        self.last_update = now
        self.rate += self.recovery_per_second * max(self.ceiling, self.min_rate) * elapsed
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
        if self.state.rate is not None:
            self.state.on_success(time.monotonic())
