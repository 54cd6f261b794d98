"""Pure poll schedule: when to ask for a job's status next.

A quick first look, then intervals that grow with the time already waited (so short jobs are seen
promptly and long jobs cost few requests), spread by jitter so thousands of jobs never poll in
lock-step, and overridden by a server hint (``poll-after-ms``/``Retry-After``) when one is given.
The first look is learned per session (``FirstLook``): a couple of probe jobs find how long jobs
take while the others wait without polling, then first looks land where most jobs are done.
"""

from __future__ import annotations

import math
import random

import attrs

from ._errors import ConfigurationError
from ._validate import fraction, integer, seconds, setting

__all__ = ["FirstLook", "PollPolicy", "poll_delay"]


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
class FirstLook:
    """When to look at a job first, learned so that ``target`` of jobs are done by then.

    Until something is known, ``probes`` jobs poll on the policy's schedule while the others wait
    (``plan`` says ``None``); the first job seen done sets the first look to its time. After that
    every first look nudges it (a stochastic quantile estimate: multiply by
    ``exp(step * (target - done))``). Only a first look's outcome is used, never the time a job
    was *seen* done, which is always late: learning from it would creep upwards with every poll;
    and only a look made at the planned time (not one a job was already past).
    """

    target: float = 0.9
    step: float = 0.1
    probes: int = 2
    at: float | None = None  # seconds after submission
    probing: int = 0  # probes polling right now

    def plan(self, policy: PollPolicy, *, elapsed: float = 0.0) -> float | None:
        """The wait before a job's first look (``elapsed`` seconds after its submission);
        ``None``: wait for ``learned`` (at most ``policy.max_interval``) and ask again."""
        if self.at is not None:
            return max(0.0, max(policy.first_delay, self.at) - elapsed)
        if self.probing < self.probes:
            self.probing += 1
            return policy.first_delay
        return None

    def probe_ended(self) -> None:
        """A probe job stopped polling (done or not): another job may probe."""
        self.probing = max(0, self.probing - 1)

    def seen_done(self, elapsed: float) -> bool:
        """A job polled on the policy's schedule was seen done ``elapsed`` seconds in; True when
        that is the session's first knowledge of how long jobs take."""
        if self.at is not None or elapsed <= 0:
            return False
        self.at = elapsed
        return True

    def looked(self, done: bool, age: float) -> None:
        """A first look at a job ``age`` seconds old found it done (or not): move the first look
        one step from ``age``. A thousand looks at about the same age move it about one step in
        all, not one step each: a thousand jobs that missed together must not push it up a
        thousandfold."""
        moved = age * math.exp(self.step * (self.target - (1.0 if done else 0.0)))
        if self.at is not None:
            self.at = min(self.at, moved) if done else max(self.at, moved)


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
