"""Counters a test (or a benchmark in another process) asserts on.

Plain attributes, incremented on the server's event loop; reading them from another thread (a
``ThreadedServer``) is fine. ``reset()`` zeroes them in place, so references stay valid.
"""

from __future__ import annotations

import collections
from typing import Any

import attrs

__all__ = ["Stats"]

MAX_BODIES = 100
MAX_BODY_BYTES = 64 * 1024 * 1024  # bodies may carry 20 MiB data: URIs; keep fewer then
MAX_KEYS = 10_000


@attrs.define(eq=False)
class Stats:
    """What the server saw and did.

    ``requests`` and ``authorized_requests`` are keyed by endpoint (``generate``, ``status``,
    ``providers``, ``files``, plus ``stats`` and ``unknown``); the latter counts requests that
    carried an ``Authorization`` header, so a test can assert the key never reached the file host.
    """

    jobs_created: int = 0
    images_rendered: int = 0
    status_calls: int = 0
    provider_calls: int = 0
    downloads: int = 0
    idempotent_replays: int = 0
    rate_limited: int = 0
    live_jobs_refused: int = 0
    faults: collections.Counter[str] = attrs.field(factory=collections.Counter)
    requests: collections.Counter[str] = attrs.field(factory=collections.Counter)
    authorized_requests: collections.Counter[str] = attrs.field(factory=collections.Counter)
    generate_bodies: collections.deque[Any] = attrs.field(
        factory=lambda: collections.deque(maxlen=MAX_BODIES)
    )
    _keys: dict[str, None] = attrs.field(factory=dict, alias="_keys")
    _body_sizes: collections.deque[int] = attrs.field(
        factory=collections.deque, alias="_body_sizes"
    )

    @property
    def idempotency_keys(self) -> list[str]:
        """The distinct ``Idempotency-Key`` values seen on generate, oldest first (last 10,000)."""
        return list(self._keys)

    def saw_body(self, body: Any, size: int) -> None:
        """Remember a generate body (the last 100, and at most 64 MiB of them)."""
        bodies, sizes = self.generate_bodies, self._body_sizes
        if len(sizes) != len(bodies):  # someone cleared the deque by hand
            sizes.clear()
            sizes.extend(0 for _ in bodies)
        if len(bodies) == MAX_BODIES:
            bodies.popleft()
            sizes.popleft()
        bodies.append(body)
        sizes.append(size)
        total = sum(sizes)
        while total > MAX_BODY_BYTES and len(bodies) > 1:
            bodies.popleft()
            total -= sizes.popleft()

    def saw_key(self, key: str) -> None:
        """Remember an idempotency key (distinct, bounded)."""
        if key in self._keys:
            return
        self._keys[key] = None
        if len(self._keys) > MAX_KEYS:
            del self._keys[next(iter(self._keys))]

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy of every counter."""
        return {
            "jobs_created": self.jobs_created,
            "images_rendered": self.images_rendered,
            "status_calls": self.status_calls,
            "provider_calls": self.provider_calls,
            "downloads": self.downloads,
            "idempotent_replays": self.idempotent_replays,
            "rate_limited": self.rate_limited,
            "live_jobs_refused": self.live_jobs_refused,
            "faults": dict(self.faults),
            "requests": dict(self.requests),
            "authorized_requests": dict(self.authorized_requests),
            "generate_bodies": list(self.generate_bodies),
            "idempotency_keys": list(self._keys),
        }

    def reset(self) -> None:
        """Zero every counter, in place."""
        self.jobs_created = self.images_rendered = self.status_calls = 0
        self.provider_calls = self.downloads = self.idempotent_replays = 0
        self.rate_limited = self.live_jobs_refused = 0
        self.faults.clear()
        self.requests.clear()
        self.authorized_requests.clear()
        self.generate_bodies.clear()
        self._body_sizes.clear()
        self._keys.clear()
