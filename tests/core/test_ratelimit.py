"""The AIMD rate state, driven with explicit clock values (no sleeping, no real time)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radient_async._ratelimit import AimdState, RateGate


def send_burst(state: AimdState, count: int, start: float, span: float = 1.0) -> list[float]:
    """Reserve ``count`` sends spread evenly over ``[start, start + span)``; returns the waits."""
    return [state.reserve(start + span * i / count) for i in range(count)]


def send_when_allowed(state: AimdState, now: float) -> float:
    """Ask the gate, wait as told and ask again, as a caller does; returns when the send went."""
    while (wait := state.reserve(now)) is not None and wait > 0:
        now += wait
    return now


def throttled_state(observed: int = 100, at: float = 1.0, **kwargs: float) -> AimdState:
    """A state that sent ``observed`` requests in the second before a 429 at ``at``."""
    state = AimdState(**kwargs)
    send_burst(state, observed, at - 1.0 + 1e-9, span=1.0 - 2e-9)
    state.on_throttled(at, retry_after=0.0)
    return state


# -- unlimited until throttled -------------------------------------------------------------------


def test_unlimited_until_the_first_429() -> None:
    state = AimdState()
    assert state.rate is None
    assert send_burst(state, 1000, 0.0, span=0.01) == [0.0] * 1000
    assert state.reserve(0.005) == 0.0  # even "simultaneous" sends pass straight through
    assert state.rate is None


def test_successes_while_unlimited_change_nothing() -> None:
    state = AimdState()
    for i in range(50):
        state.on_success(i / 10)
    assert state.rate is None
    assert len(state.answers) == 0  # not even tallied
    assert state.reserve(5.0) == 0.0


def test_observed_rate_counts_the_last_second_of_sends() -> None:
    state = AimdState()
    send_burst(state, 30, 0.0, span=0.5)
    assert state.observed_rate() == 30
    state.reserve(1.2)  # the sends before 0.2 fall out of the window
    assert state.observed_rate() == pytest.approx(1 + sum(1 for i in range(30) if i / 60 >= 0.2))
    state.reserve(10.0)
    assert state.observed_rate() == 1


# -- multiplicative decrease ---------------------------------------------------------------------


@pytest.mark.parametrize(("observed", "decrease"), [(100, 0.7), (40, 0.5), (10, 0.9)])
def test_a_429_cuts_the_rate_to_a_fraction_of_what_was_sent(observed: int, decrease: float) -> None:
    state = throttled_state(observed, decrease=decrease)
    assert state.rate == pytest.approx(decrease * observed)
    assert state.ceiling == pytest.approx(observed)
    assert state.last_decrease == 1.0


@pytest.mark.parametrize(("observed", "min_rate"), [(0, 1.0), (1, 1.0), (3, 5.0)])
def test_the_rate_never_drops_below_min_rate(observed: int, min_rate: float) -> None:
    state = throttled_state(observed, min_rate=min_rate, floor=0.0)
    assert state.rate == pytest.approx(min_rate)
    assert state.ceiling == pytest.approx(observed)


@pytest.mark.parametrize("observed", [0, 1, 3])
def test_a_quiet_session_is_cut_from_the_floor_not_from_its_trickle(observed: int) -> None:
    state = throttled_state(observed, floor=10.0)
    assert state.rate == pytest.approx(7.0)
    assert state.ceiling == pytest.approx(10.0)


@pytest.mark.parametrize(("retry_after", "blocked"), [(2.0, 2.0), (0.25, 0.25), (None, 1.0)])
def test_a_429_blocks_every_send_until_retry_after(
    retry_after: float | None, blocked: float
) -> None:
    state = AimdState()
    state.on_throttled(10.0, retry_after=retry_after)
    assert state.blocked_until == pytest.approx(10.0 + blocked)
    assert state.reserve(10.0) == pytest.approx(blocked)
    assert state.reserve(10.0 + blocked / 2) >= blocked / 2  # still held back midway
    assert state.reserve(10.0 + blocked + 100) == 0.0  # long after: free again


def test_a_shorter_retry_after_never_unblocks_early() -> None:
    state = AimdState()
    state.on_throttled(0.0, retry_after=5.0)
    state.on_throttled(0.1, retry_after=0.5)
    assert state.blocked_until == pytest.approx(5.0)
    state.on_throttled(0.2, retry_after=9.0)
    assert state.blocked_until == pytest.approx(9.2)


def test_repeated_429s_within_the_cooldown_cut_only_once() -> None:
    state = throttled_state(100, cooldown=1.0)
    assert state.rate == pytest.approx(70)
    for i in range(1, 10):  # a whole burst of 429s answering requests already in flight
        state.on_throttled(1.0 + i / 10 - 0.01, retry_after=0.0)
        assert state.rate == pytest.approx(70)
    assert state.last_decrease == 1.0


def test_frequent_429s_after_the_cooldown_cut_again() -> None:
    state = throttled_state(100, cooldown=1.0)
    rate_after_first = state.rate
    assert rate_after_first is not None
    send_burst(state, 50, 1.5, span=0.5)
    state.on_throttled(2.01, retry_after=0.0)
    state.on_throttled(2.02, retry_after=0.0)
    assert state.last_decrease == 1.0  # two could be strays
    state.on_throttled(2.03, retry_after=0.0)  # 429s are now the whole recent answer stream
    assert state.last_decrease == pytest.approx(2.03)
    assert state.rate < rate_after_first
    assert state.rate == pytest.approx(0.7 * rate_after_first)  # from what it was allowed


def test_a_stray_429_among_many_successes_does_not_cut() -> None:
    state = throttled_state(100)
    for i in range(200):  # 200 successes in the second before the next 429
        state.on_success(2.0 + i / 200)
    rate = state.rate
    state.on_throttled(3.0, retry_after=0.0)  # 1 of 201 answers: under the 5% trigger
    assert state.rate == rate
    assert state.last_decrease == 1.0
    assert state.throttled_fraction() == pytest.approx(1 / 201, rel=0.05)


def test_throttled_fraction_only_looks_at_the_last_second() -> None:
    state = throttled_state(10)
    assert state.throttled_fraction() == 1.0
    state.on_success(1.5)
    assert state.throttled_fraction() == 0.5
    state.on_success(2.6)  # the 429 at t=1.0 and the success at 1.5 have aged out
    assert state.throttled_fraction() == 0.0
    assert state.throttled_recently == 0


# -- additive increase ---------------------------------------------------------------------------


def test_successes_recover_linearly_in_time() -> None:
    state = throttled_state(100, recovery_per_second=0.1, quiet_after=1000.0)
    assert state.rate == pytest.approx(70)
    rates = []
    for step in range(1, 6):
        state.on_success(1.0 + step)
        rates.append(state.rate)
    # 10% of the 100/s ceiling per second, however many successes there were
    assert rates == pytest.approx([80, 90, 100, 110, 120])


def test_recovery_does_not_depend_on_how_many_successes_arrive() -> None:
    few = throttled_state(100, quiet_after=1000.0)
    many = throttled_state(100, quiet_after=1000.0)
    few.on_success(3.0)
    for i in range(1, 201):
        many.on_success(1.0 + i / 100)
    assert many.rate == pytest.approx(few.rate)


def test_successes_at_the_same_instant_add_nothing() -> None:
    state = throttled_state(100)
    state.on_success(1.0)
    state.on_success(0.5)  # a clock that went backwards is ignored too
    assert state.rate == pytest.approx(70)


def test_after_a_quiet_spell_recovery_speeds_up() -> None:
    state = throttled_state(100, recovery_per_second=0.01, quiet_after=2.0)
    state.on_success(2.0)  # 1 s after the 429: linear, 1 per second
    assert state.rate == pytest.approx(71)
    state.on_success(4.0)  # 3 s after: at least half the rate per second
    assert state.rate == pytest.approx(71 + 0.5 * 71 * 2)


@pytest.mark.parametrize("ceiling", [10, 100])
def test_pacing_switches_off_far_above_the_ceiling(ceiling: int) -> None:
    state = throttled_state(ceiling, quiet_after=1000.0)
    t = 1.0
    while state.rate is not None:
        rate = state.rate
        assert rate <= 4 * ceiling
        t += 1.0
        state.on_success(t)
        assert t < 100, "pacing never switched off"
    assert t == pytest.approx(1.0 + (4 * ceiling - 0.7 * ceiling) / (0.08 * ceiling), abs=1.0)
    assert state.rate is None
    assert send_burst(state, 100, t, span=0.001) == [0.0] * 100  # unlimited again


# -- pacing --------------------------------------------------------------------------------------


def test_reserve_spaces_sends_by_one_over_the_rate() -> None:
    state = throttled_state(100)  # rate 70/s, nothing blocked (retry_after=0)
    assert state.rate == pytest.approx(70)
    starts = [send_when_allowed(state, 1.0) for _ in range(8)]
    assert starts == pytest.approx([1.0 + i / 70 for i in range(8)])


def test_waiting_callers_claim_nothing_ahead() -> None:
    state = throttled_state(100)  # 70/s
    assert state.reserve(1.0) == 0.0
    assert [state.reserve(1.0) for _ in range(5)] == pytest.approx([1 / 70] * 5)
    assert state.reserve(1.0 + 1 / 70) == 0.0  # the next slot is still the very next one


def test_pacing_starts_after_the_block_is_lifted() -> None:
    state = AimdState()
    send_burst(state, 20, 0.0)
    state.on_throttled(1.0, retry_after=3.0)
    assert state.rate == pytest.approx(14)
    starts = [send_when_allowed(state, 1.0) for _ in range(3)]
    assert starts == pytest.approx([4.0, 4.0 + 1 / 14, 4.0 + 2 / 14])


def test_a_paced_sender_that_is_already_late_goes_at_once() -> None:
    state = throttled_state(10)  # 7 per second
    assert state.reserve(1.0) == 0.0
    assert state.reserve(1.0) == pytest.approx(1 / 7)
    assert state.reserve(50.0) == 0.0  # long after the last slot: no wait
    assert state.reserve(50.0) == pytest.approx(1 / 7)


def test_rate_gate_wraps_the_state_with_the_real_clock() -> None:
    gate = RateGate()
    assert gate.reserve() == 0.0
    gate.throttled(30.0)
    assert 29.0 < gate.reserve() <= 30.0
    assert gate.state.rate is not None
    rate = gate.state.rate
    gate.succeeded()
    assert gate.state.rate is not None
    assert gate.state.rate >= rate
    shared = AimdState()
    assert RateGate(shared).state is shared


# -- property: pacing never sends faster than the rate ------------------------------------------

events = st.lists(
    st.tuples(
        st.sampled_from(["send", "ok", "429"]),
        st.floats(0, 0.5),
        st.none() | st.floats(0, 3),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(events=events)
def test_state_stays_sane_under_any_event_sequence(
    events: list[tuple[str, float, float | None]],
) -> None:
    state = AimdState()
    now = 0.0
    last: tuple[float, float] | None = None  # (start, rate) of the last paced send
    for kind, gap, retry_after in events:
        now += gap
        if kind == "send":
            start = send_when_allowed(state, now)
            assert start >= now
            assert start >= state.blocked_until - 1e-9
            if last is not None and state.rate is not None:
                assert start >= last[0] + 1 / last[1] - 1e-9  # never faster than the pace
            last = None if state.rate is None else (start, state.rate)
        elif kind == "ok":
            state.on_success(now)
        else:
            state.on_throttled(now, retry_after)
            assert state.blocked_until >= now + (1.0 if retry_after is None else retry_after)
        assert state.rate is None or state.rate >= state.min_rate
        assert 0 <= state.throttled_recently <= len(state.answers)


@settings(max_examples=300, deadline=None)
@given(
    rate=st.none() | st.floats(0.5, 1000),
    cap=st.none() | st.floats(1, 1000),
    blocked_until=st.floats(0, 10),
    next_send=st.floats(0, 10),
    now=st.floats(0, 10),
)
def test_take_now_claims_exactly_when_reserve_would(
    rate: float | None, cap: float | None, blocked_until: float, next_send: float, now: float
) -> None:
    # The gate's fast path must agree with the full rule in any state, blocked or paced or not.
    def state() -> AimdState:
        made = AimdState(rate=rate, cap=cap, blocked_until=blocked_until, next_send=next_send)
        made.sends.extend([now - 2.0, now - 0.5])
        return made

    fast, full = state(), state()
    assert fast.take_now(now) == (full.reserve(now) == 0.0)
    assert list(fast.sends) == list(full.sends)
    assert fast.next_send == full.next_send
