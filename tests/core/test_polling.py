"""The pure poll schedule: first look, growth with elapsed time, clamping, jitter, server hints."""

from __future__ import annotations

import itertools
import math
import random
import statistics
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radient_async._polling import FirstLook, PollPolicy, poll_delay, probe_delay


class FixedRandom(random.Random):
    """A random source that always draws the same number in [0, 1)."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


MIDDLE = FixedRandom(0.5)  # 2 * 0.5 - 1 == 0: no jitter
POLICY = PollPolicy(first_delay=0.2, min_interval=0.5, max_interval=4.0, growth=0.25, jitter=0.1)


def test_defaults() -> None:
    policy = PollPolicy()
    assert (
        policy.first_delay,
        policy.min_interval,
        policy.max_interval,
        policy.growth,
        policy.jitter,
        policy.timeout,
        policy.max_unknown,
    ) == (0.1, 0.1, 5.0, 0.25, 0.1, 600.0, 10)


@pytest.mark.parametrize("elapsed", [0.0, -1.0])
def test_first_look_uses_first_delay(elapsed: float) -> None:
    assert poll_delay(POLICY, elapsed, rng=MIDDLE) == pytest.approx(0.2)


def test_an_explicit_first_delay_wins_over_the_schedule() -> None:
    assert poll_delay(POLICY, 0.0, first=1.5, rng=MIDDLE) == pytest.approx(1.5)
    assert poll_delay(POLICY, 30.0, first=1.5, rng=MIDDLE) == pytest.approx(1.5)


@pytest.mark.parametrize(
    ("elapsed", "base"),
    [
        (0.01, 0.5),  # clamped up to min_interval
        (1.0, 0.5),
        (2.0, 0.5),
        (3.0, 0.75),
        (8.0, 2.0),
        (16.0, 4.0),
        (17.0, 4.0),  # clamped down to max_interval
        (10_000.0, 4.0),
        (math.inf, 4.0),
    ],
)
def test_interval_grows_with_elapsed_time_within_bounds(elapsed: float, base: float) -> None:
    assert poll_delay(POLICY, elapsed, rng=MIDDLE) == pytest.approx(base)


def test_intervals_never_shrink_as_time_passes() -> None:
    delays = [poll_delay(POLICY, t / 4, rng=MIDDLE) for t in range(1, 100)]
    assert delays == sorted(delays)


@pytest.mark.parametrize(
    ("draw", "factor"), [(0.0, 0.9), (0.25, 0.95), (0.5, 1.0), (0.75, 1.05), (0.999999, 1.1)]
)
@pytest.mark.parametrize("elapsed", [0.0, 1.0, 8.0, 100.0])
def test_jitter_spreads_by_plus_or_minus_jitter(draw: float, factor: float, elapsed: float) -> None:
    base = poll_delay(POLICY, elapsed, rng=MIDDLE)
    assert poll_delay(POLICY, elapsed, rng=FixedRandom(draw)) == pytest.approx(
        base * factor, rel=1e-5
    )


def test_jitter_actually_spreads_real_draws() -> None:
    rng = random.Random(7)
    delays = [poll_delay(POLICY, 8.0, rng=rng) for _ in range(500)]
    assert all(1.8 <= delay <= 2.2 for delay in delays)
    assert max(delays) - min(delays) > 0.3
    assert len(set(delays)) > 450


def test_zero_jitter_is_exact_with_any_rng() -> None:
    policy = PollPolicy(jitter=0.0, min_interval=0.5, max_interval=4.0)
    assert {poll_delay(policy, 8.0, rng=random.Random(seed)) for seed in range(20)} == {2.0}
    assert poll_delay(policy, 8.0) == 2.0  # the module's own random source


@pytest.mark.parametrize(
    ("hint", "delay"),
    [
        (1.0, 1.0),
        (0.25, 0.25),  # exactly min_interval / 2
        (0.3, 0.3),
        (0.1, 0.25),  # a flood-inducing hint is raised to min_interval / 2
        (0.0, 0.25),
        (-5.0, 0.25),
        (4.0, 4.0),
        (60.0, 4.0),  # a stalling hint is capped at max_interval
        (math.inf, 4.0),
    ],
)
def test_server_hint_wins_but_is_clamped(hint: float, delay: float) -> None:
    for elapsed in (0.0, 3.0, 500.0):
        assert poll_delay(POLICY, elapsed, hint=hint, rng=FixedRandom(0.999)) == delay
        assert poll_delay(POLICY, elapsed, hint=hint, first=3.0) == delay


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"first_delay": 0}, "first_delay"),
        ({"first_delay": -1}, "first_delay"),
        ({"first_delay": math.nan}, "first_delay"),
        ({"first_delay": "1"}, "first_delay"),
        ({"min_interval": 0}, "min_interval"),
        ({"max_interval": 0}, "max_interval"),
        ({"max_interval": True}, "max_interval"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": None}, "timeout"),
        ({"growth": 1.0}, "growth"),
        ({"growth": -0.1}, "growth"),
        ({"growth": math.nan}, "growth"),
        ({"jitter": 1.0}, "jitter"),
        ({"jitter": -0.01}, "jitter"),
        ({"min_interval": 5, "max_interval": 1}, "min_interval must not exceed max_interval"),
        ({"max_unknown": 0}, "max_unknown"),
        ({"max_unknown": -3}, "max_unknown"),
        ({"max_unknown": 2.5}, "max_unknown"),
    ],
)
def test_policy_validation(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PollPolicy(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"growth": 0.0, "jitter": 0.0},
        {"growth": 0.999, "jitter": 0.999},
        {"min_interval": 2.0, "max_interval": 2.0},
        {"timeout": math.inf},
        {"max_unknown": 1},
    ],
)
def test_edge_values_are_accepted(kwargs: dict[str, Any]) -> None:
    assert PollPolicy(**kwargs)


def test_policy_is_frozen_and_keyword_only() -> None:
    with pytest.raises(AttributeError):
        POLICY.timeout = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        PollPolicy(0.1)  # type: ignore[misc]


# -- the learned first look ----------------------------------------------------------------------


def _probe_ages(policy: PollPolicy, phase: float, until: float) -> list[float]:
    """The ages at which a probe at ``phase`` looks, up to ``until`` seconds."""
    ages, age = [], 0.0
    while age < until:
        wait = probe_delay(policy, age, phase)
        assert policy.min_interval <= wait <= policy.max_interval
        age += wait
        ages.append(age)
    return ages


def test_two_probes_look_in_turn_not_together() -> None:
    # Every waiting job's first look is learned from the first probe look that finds a job
    # done, so how late that look can be is how late all of them are. Two probes on one
    # schedule (jitter barely parts them) see a job up to 25% late; taking turns, ~12%.
    policy = PollPolicy()
    even, odd = _probe_ages(policy, 0.0, 30), _probe_ages(policy, 0.5, 30)
    plain = PollPolicy(jitter=0)
    ages, age = [], 0.0
    while age < 30:
        age += poll_delay(plain, age)
        ages.append(age)
    assert len(even) <= len(ages) + 2  # about as many looks as the policy's own schedule
    assert len(odd) <= len(ages) + 2
    merged = sorted(even + odd)
    late = [later / earlier for earlier, later in itertools.pairwise(merged) if earlier >= 1]
    assert max(late) <= 1.25**0.5 + 1e-9


def test_the_probes_take_evenly_spread_phases() -> None:
    model = FirstLook(probes=2)
    phases = []
    for _ in range(3):
        assert model.plan(POLICY) == POLICY.first_delay
        phases.append(model.probe_phase())
        model.ended(probe=True)
    assert phases == [0.0, 0.5, 0.0]


def test_before_anything_is_known_two_jobs_probe_and_the_rest_wait() -> None:
    model = FirstLook(probes=2)
    assert model.plan(POLICY) == POLICY.first_delay
    assert model.plan(POLICY) == POLICY.first_delay
    assert model.plan(POLICY) is None  # a third job waits for what the probes find
    assert model.watching == 2  # only jobs given a wait count as watched
    model.ended(probe=True)
    assert model.watching == 1
    assert model.plan(POLICY) == POLICY.first_delay  # a probe gave up: another job probes


def test_the_first_job_seen_done_sets_the_first_look() -> None:
    model = FirstLook()
    assert model.seen_done(0.0) is False  # nonsense is ignored
    assert model.seen_done(5.2) is True
    assert model.seen_done(3.0) is False  # later sightings teach nothing: they are late
    assert model.at == 5.2
    assert model.plan(POLICY) == pytest.approx(5.2)
    assert model.plan(POLICY, elapsed=2.0) == pytest.approx(3.2)  # timed from submission
    assert model.plan(POLICY, elapsed=9.0) == 0.0
    assert FirstLook(at=0.01).plan(POLICY) == POLICY.first_delay  # never before first_delay


def _batch(model: FirstLook, rng: random.Random, looks: int, in_flight: int) -> list[bool]:
    """``looks`` first looks, ``in_flight`` of them planned at a time, each made at the planned
    time give or take 10% (looks are not jittered, but may leave late), at jobs of 0.3-0.7 s:
    whether each was done."""
    outcomes: list[bool] = []
    for _ in range(looks // in_flight):
        planned = []
        for _ in range(in_flight):
            planned.append((model.plan(POLICY), model.watching))
        for wait, peers in planned:
            assert wait is not None
            age = wait * (0.9 + 0.2 * rng.random())
            done = 0.3 + 0.4 * rng.random() <= age
            model.looked(done, age, peers=peers)
            model.ended(probe=False)
            outcomes.append(done)
    return outcomes


@pytest.mark.parametrize("start", [0.2, 1.0, 3.0])
def test_first_looks_converge_on_the_target_share_of_jobs_done(start: float) -> None:
    rng = random.Random(7)
    model = FirstLook(target=0.8, at=start)
    durations = [0.3 + 0.4 * rng.random() for _ in range(3000)]  # uniform 0.3-0.7 s
    outcomes, estimates = [], []
    for duration in durations:
        planned = model.at
        assert planned is not None
        done = duration <= planned
        model.looked(done, planned)
        outcomes.append(done)
        estimates.append(planned)
    late = outcomes[-1000:]
    assert 0.77 <= sum(late) / len(late) <= 0.83
    # one job at a time, each look moves it a whole step: the estimate wanders (±20%) around
    # the 80th percentile of 0.3-0.7 s, 0.62
    assert statistics.median(estimates[-1000:]) == pytest.approx(0.62, abs=0.03)


@pytest.mark.parametrize(("target", "quantile"), [(0.8, 0.62), (0.9, 0.66)])
def test_jittered_looks_of_many_jobs_in_flight_still_reach_the_target(
    target: float, quantile: float
) -> None:
    # A min/max rule (each look moves the estimate only past the most extreme look so far)
    # settled near the 75th percentile here whatever its target: jitter made it a random walk.
    model = FirstLook(target=target, at=0.35)
    outcomes = _batch(model, random.Random(3), looks=6000, in_flight=200)
    late = outcomes[-2000:]
    assert target - 0.05 <= sum(late) / len(late) <= target + 0.05
    assert model.at == pytest.approx(quantile, abs=0.04)


def test_a_first_estimate_far_off_is_corrected_within_a_few_generations() -> None:
    model = FirstLook(target=0.8, at=0.15)  # half the shortest job: every look misses
    _batch(model, random.Random(5), looks=5 * 500, in_flight=500)  # five generations of looks
    assert model.at is not None
    assert 0.5 <= model.at <= 0.75  # the 80th percentile is 0.62; a fixed step of 0.1 gets to 0.23
    assert 5.0 <= model.generations <= 5 * 1.4  # each burst counts about once, never 500 times


def test_a_job_that_is_done_at_its_first_look_pulls_the_look_earlier() -> None:
    model = FirstLook(target=0.8, step=0.1, boost=0.1, at=1.0)
    model.looked(True, 1.0)
    assert model.at == pytest.approx(math.exp(-0.02))
    model.looked(False, model.at)
    assert model.at == pytest.approx(math.exp(0.06))


def test_a_look_that_left_far_too_late_and_found_the_job_done_teaches_nothing() -> None:
    model = FirstLook(target=0.8, step=0.1, boost=0.1, at=1.0)
    model.looked(True, 1.6)  # queued behind submits: done by 1.6 s says nothing of 1.0 s
    assert model.at == 1.0
    model.looked(False, 1.6)  # still running at 1.6 s: 1.0 s is surely too early
    assert model.at == pytest.approx(math.exp(0.08))


def test_looks_planned_together_move_the_first_look_one_step_in_all() -> None:
    model = FirstLook(target=0.8, step=0.1, boost=0.1, at=0.37)
    for _ in range(60):
        model.plan(POLICY)  # 60 jobs in flight, each to look at 0.37 s
    for _ in range(60):  # all still running then
        model.looked(False, 0.37)
    assert model.at == pytest.approx(0.37 * math.exp(0.08))  # not 0.37 * e**4.8 = 45 s
    for _ in range(60):
        model.looked(True, 0.37)
    assert model.at == pytest.approx(0.37 * math.exp(0.08) * math.exp(-0.02))


def test_the_step_decays_from_boost_to_step_as_generations_come_back() -> None:
    model = FirstLook(target=0.8, step=0.1, boost=1.0, at=1.0)
    model.looked(False, 1.0)  # the first generation: the full boost
    assert model.at == pytest.approx(math.exp(0.8))
    for _ in range(20):
        model.looked(True, model.at)
    before = model.at
    model.looked(False, before)  # 21 generations in: the floor
    assert model.at == pytest.approx(before * math.exp(0.1 * 0.8))


# -- property ------------------------------------------------------------------------------------

policies = st.builds(
    PollPolicy,
    first_delay=st.floats(0.001, 10),
    min_interval=st.floats(0.001, 1),
    max_interval=st.floats(1, 60),
    growth=st.floats(0, 0.99),
    jitter=st.floats(0, 0.99),
)


@settings(max_examples=200, deadline=None)
@given(
    policy=policies,
    elapsed=st.floats(0, 1e6),
    hint=st.none() | st.floats(-1e6, 1e6),
    draw=st.floats(0, 0.999999),
)
def test_delays_stay_within_the_jittered_bounds(
    policy: PollPolicy, elapsed: float, hint: float | None, draw: float
) -> None:
    delay = poll_delay(policy, elapsed, hint=hint, rng=FixedRandom(draw))
    if hint is not None:
        assert policy.min_interval / 2 <= delay <= policy.max_interval
        return
    low = policy.first_delay if elapsed <= 0 else policy.min_interval
    high = policy.first_delay if elapsed <= 0 else policy.max_interval
    assert low * (1 - policy.jitter) - 1e-9 <= delay <= high * (1 + policy.jitter) + 1e-9


# -- the second look, after a first look that missed ---------------------------------------------

QUICK = PollPolicy(first_delay=0.1, min_interval=0.01, max_interval=4.0, growth=0.25, jitter=0.1)


def test_nothing_learned_plans_no_second_look() -> None:
    assert FirstLook().plan_again(QUICK, first=1.0, elapsed=1.0) is None


def test_the_second_look_comes_at_later_times_the_first_looks_age() -> None:
    model = FirstLook(at=5.0, later=1.05)
    # the first look left 5.0 s in and was answered at 5.01 s: look again 5.25 s in
    assert model.plan_again(QUICK, first=5.0, elapsed=5.01) == pytest.approx(0.24)
    # not +25% of its age (1.25 s), which is what the policy's schedule would wait
    assert poll_delay(QUICK, 5.01, rng=MIDDLE) == pytest.approx(1.2525)


def test_the_second_look_is_never_later_than_the_schedule_nor_sooner_than_min_interval() -> None:
    assert FirstLook(at=2.0, later=1.9).plan_again(QUICK, first=2.0, elapsed=2.0) == pytest.approx(
        2.0 * (1 + QUICK.growth) - 2.0
    )
    assert FirstLook(at=2.0, later=1.0).plan_again(QUICK, first=2.0, elapsed=2.3) == (
        QUICK.min_interval
    )


def _second_looks(model: FirstLook, rng: random.Random, generations: int) -> list[bool]:
    """Generations of 500 jobs of 0.3-0.7 s in flight: each first look at ``at``; a job still
    running then looks again when ``plan_again`` says. Whether each second look found it done."""
    outcomes: list[bool] = []
    for _ in range(generations):
        planned = [(model.plan(QUICK), model.watching) for _ in range(500)]
        for wait, peers in planned:
            assert wait is not None
            duration = 0.3 + 0.4 * rng.random()
            model.looked(duration <= wait, wait, peers=peers)
            if duration > wait:
                again = model.plan_again(QUICK, first=wait, elapsed=wait)
                assert again is not None
                age = wait + again
                model.looked_again(QUICK, duration <= age, age, peers=peers)
                outcomes.append(duration <= age)
            model.ended(probe=False)
    return outcomes


def test_second_looks_learn_to_find_most_of_their_jobs_done() -> None:
    model = FirstLook(target=0.8, again_target=0.95, at=0.62)
    outcomes = _second_looks(model, random.Random(11), generations=40)
    late = outcomes[-1000:]
    assert 0.9 <= sum(late) / len(late) <= 0.99
    assert 1.0 <= model.later <= 1.0 + QUICK.growth


def test_a_second_look_moves_later_by_its_share_of_the_jobs_that_missed() -> None:
    model = FirstLook(target=0.8, again_target=0.95, step=0.1, boost=0.1, at=1.0, later=1.1)
    model.watching = 50  # so about 10 of them miss their first look: each is a tenth of a step
    model.looked_again(QUICK, False, 1.1)
    up = 1.1 * math.exp(0.1 / 10 * 0.95)
    assert model.later == pytest.approx(up)
    model.looked_again(QUICK, True, 1.1)
    assert model.later == pytest.approx(up * math.exp(-0.1 / 10 * 0.05))


def test_a_second_look_that_left_far_too_late_and_found_the_job_done_teaches_nothing() -> None:
    model = FirstLook(at=1.0, later=1.05)
    model.looked_again(QUICK, True, 2.0)
    assert model.later == 1.05
