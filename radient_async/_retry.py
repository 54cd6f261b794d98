"""Pure retry policy: what is worth retrying, how long to wait, and how to read ``Retry-After``.

The policy follows openai-python's (408/409/425/429/5xx and connection errors, with exponential
backoff and jitter, honouring ``retry-after-ms`` and ``Retry-After`` in seconds or as an HTTP date)
and adds one thing: a server's requested wait beyond ``max_retry_after`` fails fast instead of
stalling the caller.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Mapping

import attrs

__all__ = ["RETRYABLE_STATUSES", "RetryPolicy", "backoff_delay", "parse_retry_after"]

RETRYABLE_STATUSES = frozenset({408, 409, 425, 429})


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
        raise ValueError(f"{attribute.name} must be a non-negative number, got {value!r}")


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How API calls are retried. ``max_retries=0`` turns retries off.

    A wait is ``min(max_backoff, initial_backoff * 2**(attempt-1))`` scaled by a random factor in
    ``[1 - jitter, 1]``, unless the server asked for a specific wait (``Retry-After``).
    """

    max_retries: int = attrs.field(default=3)
    initial_backoff: float = attrs.field(default=0.25, validator=_non_negative)
    max_backoff: float = attrs.field(default=8.0, validator=_non_negative)
    jitter: float = attrs.field(default=0.25, validator=_non_negative)
    max_retry_after: float = attrs.field(default=60.0, validator=_non_negative)

    @max_retries.validator
    def _check_max_retries(self, _: object, value: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"max_retries must be a non-negative integer, got {value!r}")

    def should_retry_status(self, status: int) -> bool:
        """True for statuses that a later identical request may well get past."""
        return status in RETRYABLE_STATUSES or 500 <= status <= 599


def backoff_delay(policy: RetryPolicy, attempt: int, rng: random.Random | None = None) -> float:
    """The wait before retry number ``attempt`` (1-based) when the server gave no hint."""
    base = min(policy.max_backoff, policy.initial_backoff * 2.0 ** max(0, attempt - 1))
    jitter = min(1.0, policy.jitter)
    factor = 1.0 - jitter * (rng or random).random()
    return base * factor


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
    except (TypeError, ValueError, IndexError):
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
