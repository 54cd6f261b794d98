"""The job status machine: parsing, the transition table, terminal stickiness, unknown streaks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radient_async._models import JobStatus
from radient_async._status import StatusMachine, Step, parse_status

P, C, F, U = JobStatus.PROCESSING, JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.UNKNOWN
RAW = {P: "PROCESSING", C: "COMPLETED", F: "FAILED", U: "IN_QUEUE"}
STEP = {P: Step.WAIT, U: Step.WAIT, C: Step.COMPLETE, F: Step.FAIL}


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("PROCESSING", P),
        ("processing", P),
        ("Processing", P),
        ("  PROCESSING\n", P),
        ("COMPLETED", C),
        ("completed", C),
        ("FAILED", F),
        ("\tfailed ", F),
        ("UNKNOWN", U),  # the SDK's own placeholder is not a status the API can report
        ("IN_QUEUE", U),
        ("QUEUED", U),
        ("COMPLETE", U),
        ("FAIL", U),
        ("PROCESSING_", U),
        ("", U),
        ("   ", U),
    ],
)
def test_parse_status(raw: str, status: JobStatus) -> None:
    assert parse_status(raw) is status


@pytest.mark.parametrize(("status", "terminal"), [(P, False), (U, False), (C, True), (F, True)])
def test_terminal_states(status: JobStatus, terminal: bool) -> None:
    assert status.is_terminal is terminal


# Every (state before, observed) pair: the state after and the step the poller is told.
TABLE = [
    (None, P, P),
    (None, C, C),
    (None, F, F),
    (None, U, U),
    (P, P, P),
    (P, C, C),
    (P, F, F),
    (P, U, U),
    (U, P, P),
    (U, C, C),
    (U, F, F),
    (U, U, U),
    (C, P, C),
    (C, C, C),
    (C, F, C),
    (C, U, C),
    (F, P, F),
    (F, C, F),
    (F, F, F),
    (F, U, F),
]


def machine_in(state: JobStatus | None) -> StatusMachine:
    machine = StatusMachine(max_unknown=100)
    if state is not None:
        machine.observe(RAW[state])
        assert machine.state is state
    return machine


@pytest.mark.parametrize(("before", "observed", "after"), TABLE)
def test_transition_table(before: JobStatus | None, observed: JobStatus, after: JobStatus) -> None:
    machine = machine_in(before)
    assert machine.observe(RAW[observed]) is STEP[after]
    assert machine.state is after


def test_a_fresh_machine_has_seen_nothing() -> None:
    machine = StatusMachine()
    assert (machine.state, machine.raw, machine.unknown_streak, machine.max_unknown) == (
        None,
        None,
        0,
        10,
    )


def test_the_raw_string_is_kept_until_a_terminal_state() -> None:
    machine = StatusMachine()
    machine.observe("processing")
    assert machine.raw == "processing"
    machine.observe("IN_QUEUE")
    assert machine.raw == "IN_QUEUE"
    assert machine.observe("Completed") is Step.COMPLETE
    assert machine.raw == "Completed"
    assert machine.observe("FAILED") is Step.COMPLETE  # sticky: later answers are ignored
    assert (machine.state, machine.raw) == (C, "Completed")


@pytest.mark.parametrize("terminal", ["COMPLETED", "FAILED"])
def test_terminal_states_ignore_any_number_of_later_observations(terminal: str) -> None:
    machine = StatusMachine(max_unknown=2)
    expected = machine.observe(terminal)
    for later in ["PROCESSING", "WEIRD", "WEIRD", "WEIRD", "FAILED", "COMPLETED"]:
        assert machine.observe(later) is expected
    assert machine.unknown_streak == 0
    assert machine.state is parse_status(terminal)


@pytest.mark.parametrize("limit", [1, 2, 3, 10])
def test_unknown_statuses_give_up_after_max_unknown_in_a_row(limit: int) -> None:
    machine = StatusMachine(max_unknown=limit)
    steps = [machine.observe("IN_QUEUE") for _ in range(limit)]
    assert steps == [Step.WAIT] * (limit - 1) + [Step.GIVE_UP]
    assert machine.unknown_streak == limit
    assert machine.state is U
    assert machine.observe("STILL_QUEUED") is Step.GIVE_UP  # and keeps saying so


def test_a_known_status_resets_the_unknown_streak() -> None:
    machine = StatusMachine(max_unknown=3)
    pattern = ["QUEUED", "QUEUED", "PROCESSING"] * 5
    assert [machine.observe(raw) for raw in pattern] == [Step.WAIT] * len(pattern)
    assert machine.unknown_streak == 0
    assert machine.state is P
    assert [machine.observe("QUEUED") for _ in range(3)] == [Step.WAIT, Step.WAIT, Step.GIVE_UP]


def test_unknown_then_completed_still_completes() -> None:
    machine = StatusMachine(max_unknown=3)
    machine.observe("QUEUED")
    machine.observe("QUEUED")
    assert machine.observe("COMPLETED") is Step.COMPLETE
    assert machine.unknown_streak == 0


# -- property: any status string is handled without raising -------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    statuses=st.lists(
        st.sampled_from(["PROCESSING", "completed", "FAILED", "QUEUED"]) | st.text(max_size=12),
        max_size=30,
    ),
    limit=st.integers(1, 5),
)
def test_any_status_strings_never_raise(statuses: list[str], limit: int) -> None:
    machine = StatusMachine(max_unknown=limit)
    finished = None
    for raw in statuses:
        step = machine.observe(raw)
        assert isinstance(step, Step)
        if finished is not None:
            assert step is finished  # a terminal answer never changes
        elif step in (Step.COMPLETE, Step.FAIL):
            finished = step
        assert machine.unknown_streak <= len(statuses)
        assert (step is Step.GIVE_UP) == (finished is None and machine.unknown_streak >= limit)


def test_the_machine_keeps_what_each_status_string_said_beside_its_state() -> None:
    machine = StatusMachine()
    machine.observe(" completed ")
    assert (machine.state, machine.observed) == (JobStatus.COMPLETED, JobStatus.COMPLETED)
    machine.observe("PROCESSING")  # a final state stays final; the string said otherwise
    assert (machine.state, machine.observed) == (JobStatus.COMPLETED, JobStatus.PROCESSING)
    machine.observe("weird")
    assert machine.observed is JobStatus.UNKNOWN
