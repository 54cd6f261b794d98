"""Pure poll schedule: when to ask for a job's status next.

A quick first look, then intervals that grow with the time already waited (so short jobs are seen
promptly and long jobs cost few requests), spread by jitter so thousands of jobs never poll in
lock-step, and overridden by a server hint (``poll-after-ms``/``Retry-After``) when one is given.
The first look is learned per session (``FirstLook``): a couple of probe jobs find how long jobs
take while the others wait without polling, then first looks land where most jobs are done, and
a job still running then looks again soon (``plan_again``), not a quarter of its age later.
"""

from __future__ import annotations

import math
import random

import attrs

from ._errors import ConfigurationError
from ._validate import fraction, integer, seconds, setting

__all__ = ["FirstLook", "PollPolicy", "poll_delay", "probe_delay"]


_interval = setting(seconds())
_share = setting(fraction)
_LATE = 1.5  # a look this many times the planned first look's time was not made at it


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
    each first look's outcome moves it, a stochastic estimate of the ``target`` quantile:
    multiply by ``exp(gain * (target - done))``. The gain is shared among the jobs being watched,
    so a thousand looks at about the same time move it about one step in all, by the share of
    them that missed (not by the most extreme one, as a min/max rule would: with jittered looks
    that rule settles far below its target). The step starts at ``boost`` and decays to ``step``
    as generations of looks come back: a poor first estimate is corrected within a few, and the
    settled estimate barely drifts. Only first looks teach it, never the time a job was *seen*
    done, which is always late; and only looks made at the planned time (not one a job was
    already past). A job still running at its first look looks again at ``later`` times that
    age, learned the same way from second looks, for ``again_target`` of them.
    """

    target: float = 0.8
    step: float = 0.1
    boost: float = 1.0
    probes: int = 2
    again_target: float = 0.95
    at: float | None = None  # seconds after submission
    later: float = 1.05  # a second look's time over the first look's (``plan_again``)
    probing: int = 0  # probes polling right now
    launched: int = 0  # probes started so far (each looks at its own phase of the schedule)
    watching: int = 0  # jobs given a first look and not yet ended, probes included
    generations: float = 0.0  # looks learned from, each counted 1/watching

    def plan(self, policy: PollPolicy, *, elapsed: float = 0.0) -> float | None:
        """The wait before a job's first look (``elapsed`` seconds after its submission);
        ``None``: wait for ``learned`` (at most ``policy.max_interval``) and ask again. A job
        given a wait counts as watched until ``ended``."""
        if self.at is not None:
            self.watching += 1
            return max(0.0, max(policy.first_delay, self.at) - elapsed)
        if self.probing < self.probes:
            self.probing += 1
            self.watching += 1
            self.launched += 1
            return policy.first_delay
        return None

    def probe_phase(self) -> float:
        """The phase (``probe_delay``) of the probe ``plan`` started last: the probes take
        evenly spread phases, so that they look in turn rather than together."""
        return ((self.launched - 1) % self.probes) / self.probes

    def ended(self, *, probe: bool) -> None:
        """A job given a wait by ``plan`` stopped polling (done or not); a probe's end lets
        another job probe."""
        self.watching = max(0, self.watching - 1)
        if probe:
            self.probing = max(0, self.probing - 1)

    def seen_done(self, elapsed: float) -> bool:
        """A job polled on the policy's schedule was seen done ``elapsed`` seconds in; True when
        that is the session's first knowledge of how long jobs take."""
        if self.at is not None or elapsed <= 0:
            return False
        self.at = elapsed
        return True

    def plan_again(self, policy: PollPolicy, *, first: float, elapsed: float) -> float | None:
        """The wait before the second look at a job ``elapsed`` seconds old whose first look,
        planned from ``at``, found it running ``first`` seconds in: at ``later`` times that
        age, never later than the policy's schedule would look. ``None``: nothing learned."""
        if self.at is None:
            return None
        due = first * min(self.later, 1.0 + policy.growth)
        return max(policy.min_interval, due - elapsed)

    def looked_again(self, policy: PollPolicy, done: bool, age: float, *, peers: int = 1) -> None:
        """A second look planned by ``plan_again`` found the job done (or not) ``age`` seconds
        in: move ``later`` so that ``again_target`` of second looks find their job done.

        Second looks are the share of first looks that missed (``1 - target``), so each moves
        it by one over that share of the jobs watched: a generation of second looks moves it
        about one step, as a generation of first looks moves ``at``. Without it a job that
        missed its first look waited for the policy's schedule: +25% of its age, 1.25 s for a
        5 s job whose first look was a few milliseconds early.
        """
        if self.at is None or (done and age > _LATE * self.at * self.later):
            return
        missed = (1.0 - self.target) * max(1, peers, self.watching)
        step = max(self.step, self.boost / (1.0 + self.generations))
        moved = self.later * math.exp(
            step / max(1.0, missed) * (self.again_target - (1.0 if done else 0.0))
        )
        self.later = min(max(moved, 1.0), 1.0 + policy.growth)

    def looked(self, done: bool, age: float, *, peers: int = 1) -> None:
        """A first look planned for the learned time found a job ``age`` seconds old done (or
        not): move the first look by this look's share of one step. The share is one over the
        jobs watched when it was planned (``peers``: ``watching`` just after ``plan``) or now,
        whichever is more: a burst of looks planned together and ending one by one still moves
        it one step in all. A look that left far later than planned (queued behind submits) and
        found the job done says nothing of the time."""
        if self.at is None or (done and age > _LATE * self.at):
            return
        share = 1.0 / max(1, peers, self.watching)
        step = max(self.step, self.boost / (1.0 + self.generations))
        self.generations += share
        self.at *= math.exp(share * step * (self.target - (1.0 if done else 0.0)))


def poll_delay(
    policy: PollPolicy,
    elapsed: float,
    *,
    hint: float | None = None,
    rng: random.Random | None = None,
    first: float | None = None,
    phase: float | None = None,
) -> float:
    """Seconds to wait before the next poll of a job that has been running ``elapsed`` seconds.

    A server hint wins, clamped to ``[min_interval/2, max_interval]`` so a hostile hint can neither
    flood the server nor stall the job. A probe (``phase``) looks on its grid (``probe_delay``).
    Otherwise: ``first`` (or ``first_delay``) for the first look, then
    ``clamp(elapsed * growth, min_interval, max_interval)``, jittered by ±``jitter``.
    """
    if hint is not None:
        return min(max(hint, policy.min_interval / 2), policy.max_interval)
    if phase is not None and policy.growth > 0:
        return probe_delay(policy, elapsed, phase)
    if first is not None:
        base = first
    elif elapsed <= 0:
        base = policy.first_delay
    else:
        base = min(max(elapsed * policy.growth, policy.min_interval), policy.max_interval)
    spread = policy.jitter * (2 * (rng or random).random() - 1)
    return base * (1 + spread)


def probe_delay(policy: PollPolicy, elapsed: float, phase: float) -> float:
    """A probe's wait for its next look, on a fixed grid of ages: ``first_delay`` times
    ``(1 + growth) ** (n + phase)``, at least ``min_interval`` and at most ``max_interval``
    apart. About as many looks as the policy's schedule, but two probes at phases 0 and 1/2
    take turns: the first to see a job done sees it at most ~12% late, not 25% (every job's
    first look is learned from that sighting). No jitter: there are only a couple of probes.
    """
    ratio = 1.0 + policy.growth
    earliest = max(elapsed, 0.0) + policy.min_interval
    steps = math.ceil(math.log(earliest / policy.first_delay, ratio) - phase)
    look: float = policy.first_delay * ratio ** (max(steps, 0) + phase)
    return min(max(look - elapsed, policy.min_interval), policy.max_interval)
