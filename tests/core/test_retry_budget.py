"""The retry budget, the retry-delay rule and the rate limiter's guards, in virtual time."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

import radient_async as ra
from radient_async._ratelimit import AimdState
from radient_async._retry import RetryBudget, retry_delay


def test_retries_are_free_while_tokens_last() -> None:
    budget = RetryBudget(capacity=5, refill=1, tokens=5)
    assert [budget.reserve(0.0) for _ in range(5)] == [0.0] * 5


def test_once_spent_retries_queue_at_the_refill_rate() -> None:
    budget = RetryBudget(capacity=2, refill=4, tokens=2)
    waits = [budget.reserve(10.0) for _ in range(6)]
    assert waits == [0.0, 0.0, 0.25, 0.5, 0.75, 1.0]


def test_tokens_refill_with_time_up_to_capacity() -> None:
    budget = RetryBudget(capacity=3, refill=1, tokens=0)
    budget.reserve(0.0)  # starts the clock: one in debt
    assert budget.reserve(100.0) == 0.0
    assert budget.tokens == 2.0  # refilled to 3, one spent


def test_successes_give_tokens_back() -> None:
    budget = RetryBudget(capacity=10, refill=0.001, tokens=0)
    budget.reserve(0.0)
    for _ in range(3):
        budget.succeeded(0.0)
    assert budget.tokens == 2.0


def outage_requests(jobs: int, seconds: float, step: float = 0.05) -> int:
    """Status requests sent by ``jobs`` pollers whose every attempt fails for ``seconds``."""
    policy = ra.RetryPolicy()
    budget = RetryBudget()
    rng = random.Random(1)
    next_at = [0.0] * jobs
    attempt = [0] * jobs
    sent = 0
    now = 0.0
    while now < seconds:
        for job in range(jobs):
            if next_at[job] <= now:
                sent += 1
                attempt[job] += 1
                delay = retry_delay(policy, attempt[job], None, rng)
                assert delay is not None
                next_at[job] = now + max(delay, budget.reserve(now))
        now += step
    return sent


def test_an_outage_costs_a_bounded_number_of_requests() -> None:
    # 200 jobs, the status endpoint failing for 60 s: the bound is 2,000 requests.
    assert outage_requests(200, 60.0) <= 2_000


def test_without_a_budget_the_same_outage_would_cost_more() -> None:
    policy = ra.RetryPolicy()
    rng = random.Random(1)
    per_job, elapsed, attempt = 0, 0.0, 0
    while elapsed < 60.0:
        per_job += 1
        attempt += 1
        delay = retry_delay(policy, attempt, None, rng)
        assert delay is not None
        elapsed += delay
    assert 200 * per_job > 2_000  # so the budget above is what holds the line


def test_retry_delay_honours_retry_after_within_the_cap() -> None:
    policy = ra.RetryPolicy(max_retry_after=5)
    rng = random.Random(0)
    assert retry_delay(policy, 1, 3.0, rng) == 3.0
    assert retry_delay(policy, 1, 6.0, rng) is None  # fails that call fast


def test_retry_delay_gives_up_only_past_the_safety_valve() -> None:
    policy = ra.RetryPolicy(max_retries=2)
    rng = random.Random(0)
    assert retry_delay(policy, 2, None, rng) is not None
    assert retry_delay(policy, 3, None, rng) is None


def test_the_default_attempt_cap_is_a_generous_valve() -> None:
    assert ra.RetryPolicy().max_retries >= 20


@given(st.integers(min_value=1, max_value=10_000), st.floats(min_value=0, max_value=1e6))
def test_budget_waits_are_never_negative(calls: int, now: float) -> None:
    budget = RetryBudget()
    for _ in range(min(calls, 500)):
        assert budget.reserve(now) >= 0.0


def test_one_429_on_an_idle_session_does_not_pin_it_to_a_crawl() -> None:
    state = AimdState()
    state.reserve(0.0)  # a single quiet request
    state.on_throttled(0.5, 0.0)
    assert state.rate is not None
    assert state.rate >= 0.7 * state.floor


def test_a_paced_session_decreases_from_its_allowed_rate() -> None:
    state = AimdState(rate=100.0, ceiling=100.0)
    for i in range(20):
        state.on_throttled(5.0 + i * 0.001, 0.0)
    assert state.rate == pytest.approx(70.0)


def test_a_huge_retry_after_blocks_the_gate_no_longer_than_its_cap() -> None:
    state = AimdState(max_block=60.0)
    state.on_throttled(0.0, 3600.0)
    assert state.blocked_until == 60.0


def test_a_slot_past_the_callers_deadline_is_not_claimed() -> None:
    state = AimdState(rate=1.0, ceiling=1.0)
    assert state.reserve(0.0, latest=10.0) == 0.0
    assert state.reserve(0.0, latest=0.5) is None  # would go at 1.0
    assert state.reserve(0.0, latest=10.0) == 1.0  # the refused call did not take the slot


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (ra.Timeouts, {"request": float("inf")}),
        (ra.Timeouts, {"request": 0}),
        (ra.Limits, {"jobs": 0}),
        (ra.RetryPolicy, {"max_retries": -1}),
        (ra.RetryPolicy, {"max_backoff": float("nan")}),
        (ra.PollPolicy, {"timeout": float("nan")}),
        (ra.PollPolicy, {"max_unknown": True}),
    ],
)
def test_bad_policy_values_are_configuration_errors(cls: type, kwargs: dict[str, object]) -> None:
    with pytest.raises(ra.ConfigurationError):
        cls(**kwargs)
