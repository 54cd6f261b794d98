"""Everything the handlers share: jobs, images, sources, faults, counters and runtime settings.

One ``ServerState`` per server (a second, CDN-like files app shares it). It is mutated on the
server's event loop; the runtime settings that ``Controls`` change from other threads are single
attribute assignments or guarded by a lock, so a ``ThreadedServer`` can be scripted safely.
"""

from __future__ import annotations

import collections
import random
import threading

from ._config import ServerConfig
from ._faults import FaultPlan
from ._images import ImageCache
from ._jobs import JobStore
from ._ratelimit import TokenBucket
from ._sources import SourceLoader
from ._stats import Stats
from ._validation import fails_on_purpose

__all__ = ["ServerState"]

FAIL_MARKER_ERROR = "generation failed: the prompt asked for it ([fail])"


class ServerState:
    """The server's shared state and its runtime-adjustable settings."""

    def __init__(self, config: ServerConfig, *, now: float) -> None:
        self.config = config
        self.stats = Stats()
        self.random = random.Random(config.seed)
        self.images = ImageCache(
            self.stats, min_bytes=config.min_image_bytes, max_bytes=config.render_cache_bytes
        )
        self.jobs = JobStore(on_drop=self.images.forget)
        self.sources = SourceLoader(
            max_bytes=config.max_source_bytes,
            timeout=config.source_timeout,
            allow_remote=config.allow_remote_sources,
        )
        self.faults = FaultPlan(config.faults, self.random)
        self.image_base: str | None = config.image_base_url
        self.expected_token: bytes | None = None
        self.api_key: str | None = None
        self.set_api_key(config.api_key)
        self.latency = (config.latency, config.latency_jitter)
        self.bucket = TokenBucket(config.rate_limit, now) if config.rate_limit else None
        self._failures: collections.deque[str] = collections.deque()
        self._forced: tuple[str, int] | None = None
        self._lock = threading.Lock()

    def set_api_key(self, key: str | None) -> None:
        """Require ``Authorization: Bearer <key>`` (None: no auth)."""
        self.expected_token = None if key is None else key.encode()
        self.api_key = key

    def job_duration(self) -> float:
        """How long a job created now takes: the mean latency, uniformly ± jitter, at least 0."""
        mean, jitter = self.latency
        if jitter <= 0:
            return mean
        return max(0.0, mean + self.random.uniform(-jitter, jitter))

    def new_seed(self) -> int:
        """A seed for a request that gave none (reported back in the job)."""
        return self.random.randrange(2**31)

    def fail_next(self, errors: list[str]) -> None:
        """Queue errors for the next jobs created."""
        with self._lock:
            self._failures.extend(errors)

    def failure_for(self, prompt: str) -> str | None:
        """The error a job created now ends with (a queued one, or the ``[fail]`` marker's)."""
        if self._failures:
            with self._lock:
                if self._failures:
                    return self._failures.popleft()
        if fails_on_purpose(prompt):
            return FAIL_MARKER_ERROR
        return None

    def force_status(self, value: str | None, count: int) -> None:
        """Report ``value`` as the status of the next ``count`` status answers."""
        with self._lock:
            self._forced = (value, count) if value is not None and count > 0 else None

    def forced_status(self) -> str | None:
        """The forced status for this status answer, if any (and count it down)."""
        with self._lock:
            forced = self._forced
            if forced is None:
                return None
            value, remaining = forced
            self._forced = (value, remaining - 1) if remaining > 1 else None
            return value
