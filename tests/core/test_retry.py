"""The pure retry policy: what is retried, the backoff schedule, and reading ``Retry-After``."""

from __future__ import annotations

import email.utils
import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from radient_async._retry import RETRYABLE_STATUSES, RetryPolicy, backoff_delay, parse_retry_after

NOW = 1_700_000_000.0  # a fixed "current time" for HTTP-date tests


class FixedRandom(random.Random):
    """A random source that always draws the same number in [0, 1)."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


# -- the policy ----------------------------------------------------------------------------------


def test_defaults() -> None:
    policy = RetryPolicy()
    assert (
        policy.max_retries,
        policy.initial_backoff,
        policy.max_backoff,
        policy.jitter,
        policy.max_retry_after,
    ) == (50, 0.25, 8.0, 0.25, 60.0)  # the attempt cap is a safety valve: deadlines rule


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_retries": -1},
        {"max_retries": 1.5},
        {"max_retries": True},
        {"max_retries": "3"},
        {"max_retries": None},
        {"initial_backoff": -0.1},
        {"initial_backoff": math.nan},
        {"initial_backoff": "1"},
        {"initial_backoff": False},
        {"max_backoff": -1},
        {"jitter": -0.5},
        {"max_retry_after": -1},
        {"max_retry_after": None},
    ],
)
def test_policy_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        RetryPolicy(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [{"max_retries": 0}, {"initial_backoff": 0, "max_backoff": 0, "jitter": 0}, {"jitter": 2.0}],
)
def test_edge_values_are_accepted(kwargs: dict[str, Any]) -> None:
    assert RetryPolicy(**kwargs)


def test_policy_is_frozen_and_keyword_only() -> None:
    policy = RetryPolicy()
    with pytest.raises(AttributeError):
        policy.max_retries = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        RetryPolicy(5)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("status", "retry"),
    [
        (408, True),
        (409, True),
        (425, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (599, True),
        (200, False),
        (301, False),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (413, False),
        (422, False),
        (600, False),
    ],
)
def test_retryable_statuses(status: int, retry: bool) -> None:
    assert RetryPolicy().should_retry_status(status) is retry


def test_retryable_status_set() -> None:
    assert frozenset({408, 409, 425, 429}) == RETRYABLE_STATUSES


# -- backoff -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "base"),
    [(0, 0.5), (1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 5.0), (6, 5.0), (60, 5.0)],
)
def test_backoff_doubles_then_caps(attempt: int, base: float) -> None:
    policy = RetryPolicy(initial_backoff=0.5, max_backoff=5.0, jitter=0.25)
    assert backoff_delay(policy, attempt, FixedRandom(0.0)) == pytest.approx(base)
    assert backoff_delay(policy, attempt, FixedRandom(0.999999)) == pytest.approx(
        base * 0.75, rel=1e-5
    )


@pytest.mark.parametrize(("jitter", "low"), [(0.0, 1.0), (0.25, 0.75), (1.0, 0.0), (3.0, 0.0)])
def test_jitter_only_shortens_the_wait_and_is_clamped(jitter: float, low: float) -> None:
    policy = RetryPolicy(initial_backoff=2.0, max_backoff=2.0, jitter=jitter)
    rng = random.Random(1234)
    delays = [backoff_delay(policy, 1, rng) for _ in range(500)]
    assert all(2.0 * low <= delay <= 2.0 for delay in delays)
    if jitter:
        assert max(delays) - min(delays) > 0.5 * 2.0 * min(jitter, 1.0)  # actually spread
    else:
        assert set(delays) == {2.0}


def test_backoff_without_an_rng_uses_the_global_random() -> None:
    policy = RetryPolicy(initial_backoff=1.0, max_backoff=1.0, jitter=0.5)
    delays = {backoff_delay(policy, 1) for _ in range(20)}
    assert all(0.5 <= delay <= 1.0 for delay in delays)
    assert len(delays) > 1


def test_zero_backoff_is_zero() -> None:
    policy = RetryPolicy(initial_backoff=0, max_backoff=0)
    assert [backoff_delay(policy, n) for n in range(1, 6)] == [0.0] * 5


def test_backoff_is_monotonic_before_jitter() -> None:
    policy = RetryPolicy(initial_backoff=0.1, max_backoff=30.0, jitter=0.0)
    delays = [backoff_delay(policy, n) for n in range(1, 40)]
    assert delays == sorted(delays)
    assert delays[0] == pytest.approx(0.1)
    assert delays[-1] == 30.0


@pytest.mark.parametrize("attempt", [1025, 1026, 10_000])
def test_backoff_stays_capped_for_huge_attempt_numbers(attempt: int) -> None:
    policy = RetryPolicy(max_retries=100_000, initial_backoff=0.5, max_backoff=5.0, jitter=0.0)
    assert backoff_delay(policy, attempt) == 5.0


# -- Retry-After ---------------------------------------------------------------------------------


def http_date(timestamp: float) -> str:
    return email.utils.formatdate(timestamp, usegmt=True)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": "0"}, 0.0),
        ({"Retry-After": "2.5"}, 2.5),
        ({"Retry-After": " 3 "}, 3.0),
        ({"Retry-After": "120"}, 120.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "0"}, 0.0),
        ({"retry-after-ms": "12.5"}, 0.0125),
        ({"poll-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "500", "Retry-After": "9"}, 0.5),
        ({"poll-after-ms": "100", "retry-after-ms": "900"}, 0.1),
        ({"retry-after-ms": "soon", "Retry-After": "3"}, 3.0),  # a bad ms value falls back
        ({"poll-after-ms": "-1", "retry-after-ms": "2000"}, 2.0),
        ({"retry-after-ms": "nan", "Retry-After": "4"}, 4.0),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": ""}, None),
        ({"Retry-After": "-3"}, None),
        ({"Retry-After": "-0.5"}, None),
        ({"Retry-After": "inf"}, None),
        ({"Retry-After": "Infinity"}, None),
        ({"Retry-After": "nan"}, None),
        ({"Retry-After": "1e999"}, None),
        ({"retry-after-ms": "-5"}, None),
        ({"retry-after-ms": "inf"}, None),
        ({"Content-Type": "application/json"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], seconds: float | None) -> None:
    assert parse_retry_after(headers, now=NOW) == seconds


@pytest.mark.parametrize(("offset", "seconds"), [(30, 30.0), (1, 1.0), (3600, 3600.0)])
def test_retry_after_as_a_future_http_date(offset: int, seconds: float) -> None:
    assert parse_retry_after({"Retry-After": http_date(NOW + offset)}, now=NOW) == seconds


@pytest.mark.parametrize("offset", [0, -1, -30, -86_400 * 365])
def test_retry_after_as_a_past_http_date_is_zero(offset: int) -> None:
    assert parse_retry_after({"Retry-After": http_date(NOW + offset)}, now=NOW) == 0.0


@pytest.mark.parametrize(
    "value",
    [
        "Wed, 21 Oct 2015 07:28:00 GMT",  # the RFC's example
        "Wednesday, 21-Oct-15 07:28:00 GMT",  # RFC 850
        "Wed Oct 21 07:28:00 2015",  # asctime: no zone, so not trusted
    ],
)
def test_obsolete_date_forms_are_past_or_ignored(value: str) -> None:
    assert parse_retry_after({"Retry-After": value}, now=NOW) in (0.0, None)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("Tue, 14 Nov 2023 22:13:20 GMT", 0.0),  # exactly NOW
        ("Tue, 14 Nov 2023 23:13:20 +0100", 0.0),
        ("Tue, 14 Nov 2023 22:14:20 +0000", 60.0),
        ("Tue, 14 Nov 2023 14:14:20 -0800", 60.0),
        ("Tue, 14 Nov 2023 22:13:20 +0100", 0.0),  # an hour ago
    ],
)
def test_http_dates_honour_their_zone(value: str, seconds: float) -> None:
    assert parse_retry_after({"Retry-After": value}, now=NOW) == pytest.approx(seconds)


def test_http_date_uses_the_clock_when_now_is_not_given() -> None:
    import time

    delay = parse_retry_after({"Retry-After": http_date(time.time() + 100)})
    assert delay is not None
    assert 95 <= delay <= 101


@pytest.mark.parametrize(
    "value",
    [
        "Wed, 21 Oct 2015 07:28:00",  # no zone at all
        "Wed, 32 Oct 2015 07:28:00 GMT",
        "Wed, 21 Foo 2015 07:28:00 GMT",
        "Wed, 21 Oct 99999 07:28:00 GMT",
        "Wed, 21 Oct 2015 25:61:00 GMT",
        "Wed, 21 Oct 2015 07:28:00 +9999",
        "tomorrow",
        "12 seconds",
        "0x10",
    ],
)
def test_malformed_dates_are_ignored(value: str) -> None:
    assert parse_retry_after({"Retry-After": value}, now=NOW) is None


def test_a_date_with_an_absurd_year_is_ignored() -> None:
    value = "Wed, 21 Oct 99999999999999999999 07:28:00 GMT"
    assert parse_retry_after({"Retry-After": value}, now=NOW) is None


def test_header_names_are_case_insensitive_with_real_header_maps() -> None:
    assert parse_retry_after(CIMultiDict({"retry-after": "5"})) == 5.0
    assert parse_retry_after(CIMultiDict({"RETRY-AFTER-MS": "5"})) == 0.005
    assert parse_retry_after(CIMultiDict({"Poll-After-Ms": "50"})) == 0.05


# -- property: any header value is read without raising ------------------------------------------

dates = st.builds(
    "{}, {:02d} {} {} {:02d}:{:02d}:{:02d} {}".format,
    st.sampled_from(["Mon", "Tue", "Wed", "Xyz"]),
    st.integers(0, 40),
    st.sampled_from(["Jan", "Oct", "Dec", "Foo"]),
    st.integers(0, 10**6),
    st.integers(0, 30),
    st.integers(0, 70),
    st.integers(0, 70),
    st.sampled_from(["GMT", "UTC", "+0000", "-0800", "+9999", "", "XYZ"]),
)
header_values = st.text(max_size=40) | dates | st.floats().map(str) | st.integers().map(str)


@settings(max_examples=200, deadline=None)
@given(
    headers=st.dictionaries(
        st.sampled_from(["Retry-After", "retry-after-ms", "poll-after-ms"]),
        header_values,
        max_size=3,
    ),
    now=st.floats(0, 4e9),
)
def test_any_header_values_never_raise(headers: dict[str, str], now: float) -> None:
    seconds = parse_retry_after(headers, now=now)
    assert seconds is None or (math.isfinite(seconds) and seconds >= 0)
    if not headers:
        assert seconds is None
