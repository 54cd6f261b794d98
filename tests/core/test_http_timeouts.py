"""An attempt's timeouts: a connect or read limit its total already covers arms no timer, and
an API call's small exchange is timed as a whole, on the one timer it arms anyway."""

from __future__ import annotations

import pytest

from radient_async._config import Limits, Timeouts
from radient_async._http import Transport

TRANSPORT = Transport(Limits(), Timeouts(connect=10.0, read=30.0))


@pytest.mark.parametrize(
    ("total", "connect", "read"),
    [
        (None, 10.0, 30.0),  # no total: both limits stand
        (60.0, 10.0, 30.0),  # a download with time left: both still can fire first
        (20.0, 10.0, None),  # the read limit cannot fire before the total
        (10.0, None, None),  # nor the connect limit, at the total exactly
        (0.5, None, None),  # a poll at the end of its job's deadline
    ],
)
def test_a_limit_at_or_past_the_total_is_left_out(
    total: float | None, connect: float | None, read: float | None
) -> None:
    timeout = TRANSPORT._timeout(total)
    assert (timeout.total, timeout.connect, timeout.sock_read) == (total, connect, read)


@pytest.mark.parametrize(
    ("total", "expected_total", "connect"),
    [
        (60.0, 40.0, 10.0),  # a first attempt: connect + read as a whole, no read timer
        (None, 40.0, 10.0),  # no deadline given: still bounded
        (40.0, 40.0, 10.0),  # exactly connect + read left: the same, shared timeouts
        (25.0, 25.0, 10.0),  # less time left than connect + read: the deadline
        (5.0, 5.0, None),  # a poll near its job's deadline: one timer only
    ],
)
def test_an_api_exchange_is_timed_as_a_whole(
    total: float | None, expected_total: float, connect: float | None
) -> None:
    timeout = TRANSPORT._answer_timeout(total, b'{"prompt": "a fox"}')
    assert (timeout.total, timeout.connect, timeout.sock_read) == (expected_total, connect, None)


def test_a_large_upload_keeps_the_read_limit() -> None:
    """An image-to-image request with a large ``data:`` source may take a while to send."""
    timeout = TRANSPORT._answer_timeout(60.0, b"x" * (1024 * 1024))
    assert (timeout.total, timeout.connect, timeout.sock_read) == (60.0, 10.0, 30.0)
