"""Runtime controls: script a running server from tests (yours too), from any thread.

Each method takes effect for the requests that arrive after it returns.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable

from ._config import ENDPOINTS
from ._faults import FaultRule, check_rule
from ._ratelimit import TokenBucket
from ._state import ServerState

__all__ = ["Controls"]


def _non_negative(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")


def _count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


class Controls:
    """``server.controls``: failures, faults, latency, auth, rate limit, odd statuses, counters."""

    def __init__(self, state: ServerState) -> None:
        self._state = state

    def fail_next(self, n: int = 1, *, error: str = "generation failed (injected)") -> None:
        """The next ``n`` jobs created end FAILED with ``error``."""
        _count("n", n)
        if not isinstance(error, str) or not error:
            raise ValueError("error must be a non-empty string")
        self._state.fail_next([error] * n)

    def inject(
        self,
        kind: str,
        *,
        next_n: int | None = None,
        rate: float | None = None,
        endpoints: Iterable[str] | None = None,
        retry_after: float = 1.0,
        delay: float = 0.5,
    ) -> None:
        """Inject ``kind`` into the next ``next_n`` matching requests, or at ``rate`` until cleared.

        With neither, the next matching request. ``endpoints`` defaults to all of them
        (``generate``, ``status``, ``providers``, ``files``). ``retry_after`` is what 429/503
        answers ask for; ``delay`` is how long ``slow`` holds the answer back.
        """
        if isinstance(endpoints, str):
            endpoints = (endpoints,)
        chosen = frozenset(ENDPOINTS if endpoints is None else endpoints)
        if next_n is None and rate is None:
            next_n = 1
        probability = 1.0 if rate is None else rate
        check_rule(kind, chosen, next_n, probability)
        _non_negative("retry_after", retry_after)
        _non_negative("delay", delay)
        self._state.faults.add(FaultRule(kind, chosen, next_n, probability, retry_after, delay))

    def clear_faults(self) -> None:
        """Remove every scripted fault (a configured random fault rate stays)."""
        self._state.faults.clear()

    def set_latency(self, mean: float, jitter: float = 0.0) -> None:
        """Simulated generation time, uniformly ``mean ± jitter``, for jobs created from now on."""
        _non_negative("mean", mean)
        _non_negative("jitter", jitter)
        self._state.latency = (float(mean), float(jitter))

    def require_key(self, key: str | None) -> None:
        """Require ``Authorization: Bearer <key>`` from now on (None: no auth)."""
        if key is not None and (not isinstance(key, str) or not key or not key.isprintable()):
            raise ValueError("key must be None or a non-empty printable string")
        self._state.set_api_key(key)

    def set_rate_limit(self, rps: float | None) -> None:
        """Allow ``rps`` API requests per second (burst ``max(1, rps)``); None: unlimited."""
        if rps is not None:
            _non_negative("rps", rps)
            if rps == 0:
                raise ValueError("rps must be positive (or None for no limit)")
        self._state.bucket = None if rps is None else TokenBucket(rps, time.monotonic())

    def force_status(self, value: str, next_n: int = 1) -> None:
        """The next ``next_n`` status answers report ``value`` (any string) as the status."""
        if not isinstance(value, str):
            raise ValueError("value must be a string")
        _count("next_n", next_n)
        self._state.force_status(value, next_n)

    def reset_stats(self) -> None:
        """Zero every counter."""
        self._state.stats.reset()
