"""A global submit-rate budget, split evenly over the actors of a pool.

Ray gives the actors of a pool no shared clock or counter that is cheap to consult per request, so
the budget is split up front: ``RateBudget(submits_per_second=120, actors=4)`` gives each actor
30 submits a second, enforced by a ``Pacer`` in front of that actor's session. Splitting is exact
while every actor is busy and leaves headroom unused when some are idle (a pool that is draining
its last blocks); it needs no coordinator actor and no network hop per request.

The budget paces *submits*, the requests that create work. Each job also costs status polls (a
few per job with the default ``PollPolicy``; none with ``sync_mode=True``), so a server limit of
R requests/s is held by a budget of about R / (1 + polls per job); the session's own AIMD limiter
absorbs whatever 429s remain.
"""

from __future__ import annotations

import math
import time

import anyio
import attrs

from radient_async import ConfigurationError

__all__ = ["Pacer", "RateBudget"]


def _positive_rate(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < math.inf:
        raise ConfigurationError(f"{attribute.name} must be a positive number, got {value!r}")


def _positive_int(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigurationError(f"{attribute.name} must be a positive integer, got {value!r}")


@attrs.frozen(kw_only=True)
class RateBudget:
    """Submits per second for the whole pool, and how many actors share them."""

    submits_per_second: float = attrs.field(validator=_positive_rate)
    actors: int = attrs.field(validator=_positive_int)

    @property
    def per_actor(self) -> float:
        """One actor's share: the pool's budget divided evenly."""
        return self.submits_per_second / self.actors


@attrs.define
class PacerState:
    """Pure pacing: one send every ``1/rate`` seconds, no burst; time is passed in."""

    rate: float
    next_send: float = 0.0

    def reserve(self, now: float) -> float:
        """Claim the next send slot; the seconds to wait until it (0.0: go now)."""
        start = max(now, self.next_send)
        self.next_send = start + 1.0 / self.rate
        return start - now


class Pacer:
    """The async side of ``PacerState``, shared by every batch an actor runs.

    Slots are claimed in arrival order, so concurrent batches on one actor share its share fairly.
    A caller cancelled while it waits leaves its slot unused (the budget errs on the safe side).
    """

    def __init__(self, rate: float) -> None:
        self.state = PacerState(rate)

    async def wait_turn(self) -> None:
        """Wait until this caller may send its submit."""
        delay = self.state.reserve(time.monotonic())
        if delay > 0:
            await anyio.sleep(delay)
