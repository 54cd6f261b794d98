"""Pure poll schedule: when to ask for a job's status next.

A quick first look, then intervals that grow with the time already waited (so short jobs are seen
promptly and long jobs cost few requests), spread by jitter so thousands of jobs never poll in
lock-step, and overridden by a server hint (``poll-after-ms``/``Retry-After``) when one is given.
Once a session has seen jobs finish, the first look waits for part of their typical duration
(``DurationEstimate``), so a job is not asked about long before it can possibly be done.
"""

from __future__ import annotations

import random

import attrs

from ._errors import ConfigurationError
from ._validate import fraction, integer, seconds, setting

__all__ = ["DurationEstimate", "PollPolicy", "poll_delay"]


_interval = setting(seconds())
_share = setting(fraction)


@attrs.frozen(kw_only=True)
class PollPolicy:
    """How a job is polled, and for how long (``timeout``: the job's deadline in seconds;
    ``math.inf`` for none). Intervals are finite, so a job is always looked at again."""

    first_delay: float = attrs.field(default=0.1, validator=_interval)
    min_interval: float = attrs.field(default=0.1, validator=_interval)
    max_interval: float = attrs.field(default=5.0, validator=_interval)
    growth: float = attrs.field(default=0.25, validator=_share)
    jitter: float = attrs.field(default=0.1, validator=_share)
    timeout: float = attrs.field(default=600.0, validator=setting(seconds(infinite=True)))
    max_unknown: int = attrs.field(default=10, validator=setting(integer(1)))

    def __attrs_post_init__(self) -> None:
        if self.min_interval > self.max_interval:
            raise ConfigurationError(
                f"PollPolicy.min_interval must not exceed max_interval, got "
                f"{self.min_interval!r} > {self.max_interval!r}"
            )


@attrs.define
class DurationEstimate:
    """A moving average of how long jobs take to finish (seconds), learned from observations."""

    smoothing: float = 0.1
    typical: float | None = None

    def observe(self, duration: float) -> None:
        """Fold in one job's time from submission to completion."""
        if duration <= 0:
            return
        if self.typical is None:
            self.typical = duration
        else:
            self.typical += self.smoothing * (duration - self.typical)

    def first_delay(self, policy: PollPolicy) -> float:
        """When to look first: 60% of the typical duration, within the policy's bounds."""
        if self.typical is None:
            return policy.first_delay
        return min(max(policy.first_delay, 0.6 * self.typical), policy.max_interval)


def poll_delay(
    policy: PollPolicy,
    elapsed: float,
    *,
    hint: float | None = None,
    rng: random.Random | None = None,
    first: float | None = None,
) -> float:
    """Seconds to wait before the next poll of a job that has been running ``elapsed`` seconds.

    A server hint wins, clamped to ``[min_interval/2, max_interval]`` so a hostile hint can neither
    flood the server nor stall the job. Otherwise: ``first`` (or ``first_delay``) for the first
    look, then ``clamp(elapsed * growth, min_interval, max_interval)``, jittered by ±``jitter``.
    """
    if hint is not None:
        return min(max(hint, policy.min_interval / 2), policy.max_interval)
    if first is not None:
        base = first
    elif elapsed <= 0:
        base = policy.first_delay
    else:
        base = min(max(elapsed * policy.growth, policy.min_interval), policy.max_interval)
    spread = policy.jitter * (2 * (rng or random).random() - 1)
    return base * (1 + spread)
