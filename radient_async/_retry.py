"""Pure retry rules: what is worth retrying, how long to wait, and a session-wide retry budget.

The policy follows openai-python's (408/409/425/429/5xx and connection errors, with exponential
backoff and jitter, honouring ``retry-after-ms`` and ``Retry-After`` in seconds or as an HTTP date)
but is bounded by *time*: a call retries until its deadline (``max_retries`` is only a generous
safety valve), and a server's requested wait beyond ``max_retry_after`` fails that one call fast.
``RetryBudget`` brakes storms in the spirit of gRPC retry throttling and AWS's retry quota: when
most requests fail, retries queue for tokens instead of multiplying traffic. Time and randomness
are passed in; nothing here sleeps.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Mapping

import attrs

from ._validate import integer, non_negative, seconds, setting

__all__ = [
    "RETRYABLE_STATUSES",
    "RetryBudget",
    "RetryPolicy",
    "backoff_delay",
    "parse_retry_after",
    "retry_delay",
]

RETRYABLE_STATUSES = frozenset({408, 409, 425, 429})


_wait = setting(seconds(zero=True))


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How requests are retried: until the call's deadline, with ``max_retries`` as a safety valve.

    A wait is ``min(max_backoff, initial_backoff * 2**(attempt-1))`` scaled by a random factor in
    ``[1 - jitter, 1]``, unless the server asked for a specific wait (``Retry-After``); a wait
    longer than ``max_retry_after`` ends the call at once. ``max_retries=0`` turns retries off.
    """

    max_retries: int = attrs.field(default=50, validator=setting(integer(0)))
    initial_backoff: float = attrs.field(default=0.25, validator=_wait)
    max_backoff: float = attrs.field(default=8.0, validator=_wait)
    jitter: float = attrs.field(default=0.25, validator=setting(non_negative))
    max_retry_after: float = attrs.field(default=60.0, validator=_wait)

    def should_retry_status(self, status: int) -> bool:
        """True for statuses that a later identical request may well get past."""
        return status in RETRYABLE_STATUSES or 500 <= status <= 599


def backoff_delay(policy: RetryPolicy, attempt: int, rng: random.Random | None = None) -> float:
    """The wait before retry number ``attempt`` (1-based) when the server gave no hint."""
    doublings = min(max(0, attempt - 1), 1000)  # past ~60 the cap has long been reached
    base = min(policy.max_backoff, policy.initial_backoff * 2.0**doublings)
    jitter = min(1.0, policy.jitter)
    factor = 1.0 - jitter * (rng or random).random()
    return base * factor


def retry_delay(
    policy: RetryPolicy, attempt: int, retry_after: float | None, rng: random.Random
) -> float | None:
    """The wait before retry ``attempt``: the server's ``Retry-After`` or backoff; None to give up.

    None when the attempt cap is spent or the server asked for more than ``max_retry_after``.
    """
    if attempt > policy.max_retries:
        return None
    if retry_after is not None:
        return retry_after if retry_after <= policy.max_retry_after else None
    return backoff_delay(policy, attempt, rng)


@attrs.define
class RetryBudget:
    """A session-wide token bucket every retry draws from; the first attempt of a call never does.

    A retry takes a token; tokens come back at ``refill`` per second and one per success, up to
    ``capacity``. While tokens are left a retry goes after its own backoff; once they run out it
    waits its turn for the next token, so an outage costs about ``capacity + refill x duration``
    retries in all, however many calls are failing. Healthy traffic refills it as fast as it fails.
    """

    capacity: float = 100.0
    refill: float = 10.0
    tokens: float = 100.0
    updated: float | None = None

    def _top_up(self, now: float) -> None:
        if self.updated is not None and now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.refill)
        self.updated = now if self.updated is None else max(self.updated, now)

    def reserve(self, now: float) -> float:
        """Claim a token for one retry; returns how long to wait for it (0 while tokens last)."""
        self._top_up(now)
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.refill

    @property
    def full(self) -> bool:
        """No token is missing: a success has nothing to give back (and needs no clock read)."""
        return self.tokens >= self.capacity

    def succeeded(self, now: float) -> None:
        """A request succeeded: one token back (the budget refills as fast as traffic heals)."""
        if self.tokens < self.capacity:
            self._top_up(now)
            self.tokens = min(self.capacity, self.tokens + 1.0)


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait per ``poll-after-ms``, ``retry-after-ms`` or ``Retry-After``, else None.

    ``Retry-After`` may be delta-seconds or an HTTP date; malformed or negative values are ignored.
    """
    for name in ("poll-after-ms", "retry-after-ms"):
        millis = _finite(headers.get(name))
        if millis is not None:
            return millis / 1000.0
    value = headers.get("Retry-After")
    if value is None:
        return None
    seconds = _finite(value)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _finite(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None
