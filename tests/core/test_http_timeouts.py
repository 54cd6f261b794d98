"""An attempt's timeouts: a connect or read limit its total already covers arms no timer."""

from __future__ import annotations

import pytest

from radient_async._config import Limits, Timeouts
from radient_async._http import Transport


@pytest.mark.parametrize(
    ("total", "connect", "read"),
    [
        (None, 10.0, 30.0),  # no total: both limits stand
        (60.0, 10.0, 30.0),  # a first attempt of an API call: both still can fire first
        (20.0, 10.0, None),  # the read limit cannot fire before the total
        (10.0, None, None),  # nor the connect limit, at the total exactly
        (0.5, None, None),  # a poll at the end of its job's deadline
    ],
)
def test_a_limit_at_or_past_the_total_is_left_out(
    total: float | None, connect: float | None, read: float | None
) -> None:
    timeout = Transport(Limits(), Timeouts(connect=10.0, read=30.0))._timeout(total)
    assert (timeout.total, timeout.connect, timeout.sock_read) == (total, connect, read)
