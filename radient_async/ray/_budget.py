"""A global request-rate budget, split evenly over the actors of a pool.

Ray gives the actors of a pool no shared clock or counter that is cheap to consult per request, so
the budget is split up front: ``RateBudget(requests_per_second=120, actors=4)`` gives each actor
30 requests a second, enforced as a hard ceiling by that actor's session
(``Limits(requests_per_second=...)``), under its adaptive limiter. The ceiling counts every API
request (submits and status polls alike), so a budget below the server's limit holds it. Splitting
is exact while every actor is busy and leaves headroom unused when some are idle (a pool that is
draining its last blocks); it needs no coordinator actor and no network hop per request.
"""

from __future__ import annotations

import attrs

from radient_async._validate import integer, positive_rate, setting

__all__ = ["RateBudget"]


@attrs.frozen(kw_only=True)
class RateBudget:
    """API requests per second for the whole pool, and how many actors share them."""

    requests_per_second: float = attrs.field(validator=setting(positive_rate))
    actors: int = attrs.field(validator=setting(integer(1)))

    @property
    def per_actor(self) -> float:
        """One actor's share: the pool's budget divided evenly."""
        return self.requests_per_second / self.actors
