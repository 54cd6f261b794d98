"""The job status machine: every rule about how a job's status may change lives here (as in h11).

A job starts unseen, is PROCESSING for a while and ends COMPLETED or FAILED. Terminal states never
change. A status string outside the documented three is UNKNOWN: tolerated (the API may add states
such as queued) but counted, so a server that only ever says something strange cannot hang a caller.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs

from ._models import JobStatus

__all__ = ["StatusMachine", "Step", "parse_status"]

_KNOWN: Mapping[str, JobStatus] = {s.value: s for s in JobStatus if s is not JobStatus.UNKNOWN}


class Step(enum.Enum):
    """What the poller should do after an observation."""

    WAIT = "wait"
    COMPLETE = "complete"
    FAIL = "fail"
    GIVE_UP = "give_up"


# (current state, observed state) -> next state. Absent pairs keep the current state.
_TRANSITIONS: Mapping[tuple[JobStatus | None, JobStatus], JobStatus] = {
    (None, JobStatus.PROCESSING): JobStatus.PROCESSING,
    (None, JobStatus.COMPLETED): JobStatus.COMPLETED,
    (None, JobStatus.FAILED): JobStatus.FAILED,
    (None, JobStatus.UNKNOWN): JobStatus.UNKNOWN,
    (JobStatus.PROCESSING, JobStatus.PROCESSING): JobStatus.PROCESSING,
    (JobStatus.PROCESSING, JobStatus.COMPLETED): JobStatus.COMPLETED,
    (JobStatus.PROCESSING, JobStatus.FAILED): JobStatus.FAILED,
    (JobStatus.PROCESSING, JobStatus.UNKNOWN): JobStatus.UNKNOWN,
    (JobStatus.UNKNOWN, JobStatus.PROCESSING): JobStatus.PROCESSING,
    (JobStatus.UNKNOWN, JobStatus.COMPLETED): JobStatus.COMPLETED,
    (JobStatus.UNKNOWN, JobStatus.FAILED): JobStatus.FAILED,
    (JobStatus.UNKNOWN, JobStatus.UNKNOWN): JobStatus.UNKNOWN,
}

_STEPS: Mapping[JobStatus, Step] = {
    JobStatus.PROCESSING: Step.WAIT,
    JobStatus.UNKNOWN: Step.WAIT,
    JobStatus.COMPLETED: Step.COMPLETE,
    JobStatus.FAILED: Step.FAIL,
}


def parse_status(raw: str) -> JobStatus:
    """The documented status for ``raw`` (case-insensitive), or UNKNOWN."""
    return _KNOWN.get(raw.strip().upper(), JobStatus.UNKNOWN)


@attrs.define
class StatusMachine:
    """Tracks one job's status across observations and says what to do next."""

    max_unknown: int = 10
    state: JobStatus | None = None
    raw: str | None = None
    observed: JobStatus = JobStatus.UNKNOWN  # what the last status string said, before the rules
    unknown_streak: int = 0

    def observe(self, raw: str) -> Step:
        """Record an observed status string and decide the next step."""
        observed = self.observed = parse_status(raw)
        if self.state is not None and self.state.is_terminal:
            return _STEPS[self.state]
        self.state = _TRANSITIONS[(self.state, observed)]
        self.raw = raw
        if observed is JobStatus.UNKNOWN:
            self.unknown_streak += 1
            if self.unknown_streak >= self.max_unknown:
                return Step.GIVE_UP
        else:
            self.unknown_streak = 0
        return _STEPS[self.state]
