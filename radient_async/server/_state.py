"""The server's state: jobs, idempotency keys, counters, and the controls tests script it with.

Job status is derived from the clock (a job knows when it finishes), so 100,000 live jobs cost no
tasks and no timers. Expired jobs are swept lazily and by the app's periodic sweeper.
"""

from __future__ import annotations

import collections
import random
import threading
import time
from typing import Any

import attrs

from ._config import ENDPOINTS, FAULT_KINDS, ServerConfig

__all__ = ["Controls", "FaultRule", "Job", "ServerState", "Stats"]


@attrs.define
class Job:
    """One generation job as the server keeps it."""

    request_id: str
    provider: str
    prompt: str
    num_images: int
    width: int
    height: int
    seed: int
    created: float
    finish_at: float
    expires_at: float
    error: str | None = None
    source_digest: str | None = None
    strength: float | None = None

    def status(self, now: float) -> str:
        if now < self.finish_at:
            return "PROCESSING"
        return "FAILED" if self.error else "COMPLETED"


@attrs.define
class Stats:
    """Counters tests assert on; ``snapshot()`` gives a plain dict."""

    jobs_created: int = 0
    images_rendered: int = 0
    status_calls: int = 0
    provider_calls: int = 0
    downloads: int = 0
    idempotent_replays: int = 0
    rate_limited: int = 0
    faults: collections.Counter[str] = attrs.field(factory=collections.Counter)
    requests: collections.Counter[str] = attrs.field(factory=collections.Counter)
    authorized_requests: collections.Counter[str] = attrs.field(factory=collections.Counter)
    generate_bodies: collections.deque[dict[str, Any]] = attrs.field(
        factory=lambda: collections.deque(maxlen=100)
    )
    idempotency_keys: list[str] = attrs.field(factory=list)

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy of every counter."""
        data = attrs.asdict(self, recurse=False)
        for name in ("faults", "requests", "authorized_requests"):
            data[name] = dict(data[name])
        data["generate_bodies"] = list(self.generate_bodies)
        data["idempotency_keys"] = list(self.idempotency_keys)
        return data


@attrs.define
class FaultRule:
    """A scripted fault: for the next ``remaining`` matching requests, or at ``rate``."""

    kind: str
    endpoints: frozenset[str]
    remaining: int | None = None
    rate: float = 1.0
    retry_after: float = 1.0
    delay: float = 0.5


class ServerState:
    """Everything the handlers share; mutated only on the server's event loop (or under a lock)."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.api_key = config.api_key
        self.latency = config.latency
        self.jitter = config.latency_jitter
        self.rate_limit = config.rate_limit
        self.random = random.Random(config.seed)
        self.jobs: dict[str, Job] = {}
        self.idempotency: dict[str, tuple[str, float]] = {}
        self.stats = Stats()
        self.rules: list[FaultRule] = []
        self.fail_queue: collections.deque[str] = collections.deque()
        self.forced_status: tuple[str, int] | None = None
        self.image_base: str | None = config.image_base_url
        self.lock = threading.Lock()
        self._tokens = float(config.rate_limit or 0)
        self._refilled = time.monotonic()
        self._swept = time.monotonic()

    # -- jobs ---------------------------------------------------------------------------------

    def latency_for_job(self) -> float:
        if self.jitter <= 0:
            return self.latency
        return max(0.0, self.latency + self.random.uniform(-self.jitter, self.jitter))

    def next_failure(self, prompt: str) -> str | None:
        with self.lock:
            if self.fail_queue:
                return self.fail_queue.popleft()
        if "[fail]" in prompt.lower():
            return "the provider rejected the prompt ([fail] requested)"
        return None

    def lookup(self, request_id: str, now: float) -> Job | None:
        job = self.jobs.get(request_id)
        if job is not None and now >= job.expires_at:
            del self.jobs[request_id]
            return None
        return job

    def sweep(self, now: float) -> list[Job]:
        """Drop expired jobs and idempotency keys; returns the dropped jobs (for callers' logs)."""
        self._swept = now
        dead = [job for job in self.jobs.values() if now >= job.expires_at]
        for job in dead:
            del self.jobs[job.request_id]
        for key in [k for k, (_, expires) in self.idempotency.items() if now >= expires]:
            del self.idempotency[key]
        return dead

    def take_forced_status(self) -> str | None:
        with self.lock:
            if self.forced_status is None:
                return None
            value, remaining = self.forced_status
            self.forced_status = (value, remaining - 1) if remaining > 1 else None
            return value

    # -- rate limit and faults -------------------------------------------------------------------

    def take_token(self, now: float) -> float | None:
        """None when the request may proceed, else the seconds until a token is available."""
        rate = self.rate_limit
        if rate is None:
            return None
        burst = max(1.0, rate)
        self._tokens = min(burst, self._tokens + (now - self._refilled) * rate)
        self._refilled = now
        if self._tokens >= 1:
            self._tokens -= 1
            return None
        return (1 - self._tokens) / rate

    def pick_fault(self, endpoint: str) -> FaultRule | None:
        """The fault to inject into this request, if any (scripted rules first, then random)."""
        with self.lock:
            for rule in self.rules:
                if endpoint not in rule.endpoints:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self.rules.remove(rule)
                    return rule
                if self.random.random() < rule.rate:
                    return rule
        faults = self.config.faults
        if faults.rate > 0 and endpoint in faults.endpoints and self.random.random() < faults.rate:
            return FaultRule(
                self.random.choice(faults.kinds),
                frozenset(faults.endpoints),
                retry_after=faults.retry_after,
                delay=faults.slow_delay,
            )
        return None


class Controls:
    """Script the server from tests (no private attributes needed). Safe to call from any thread."""

    def __init__(self, state: ServerState) -> None:
        self._state = state

    def fail_next(self, n: int = 1, *, error: str = "generation failed (injected)") -> None:
        """The next ``n`` jobs created end FAILED with ``error``."""
        with self._state.lock:
            self._state.fail_queue.extend([error] * n)

    def inject(
        self,
        kind: str,
        *,
        next_n: int | None = None,
        rate: float | None = None,
        endpoints: list[str] | tuple[str, ...] | None = None,
        retry_after: float = 1.0,
        delay: float = 0.5,
    ) -> None:
        """Inject ``kind`` faults into the next ``next_n`` matching requests, or at ``rate``."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
        chosen = frozenset(endpoints or ENDPOINTS)
        if not chosen <= set(ENDPOINTS):
            raise ValueError(f"unknown endpoints {sorted(chosen - set(ENDPOINTS))}")
        if next_n is None and rate is None:
            next_n = 1
        rule = FaultRule(kind, chosen, next_n, 1.0 if rate is None else rate, retry_after, delay)
        with self._state.lock:
            self._state.rules.append(rule)

    def clear_faults(self) -> None:
        """Remove every scripted fault."""
        with self._state.lock:
            self._state.rules.clear()

    def set_latency(self, mean: float, jitter: float = 0.0) -> None:
        """Simulated generation time for jobs created from now on."""
        if mean < 0 or jitter < 0:
            raise ValueError("latency and jitter must be non-negative")
        self._state.latency, self._state.jitter = mean, jitter

    def require_key(self, key: str | None) -> None:
        """Require ``Authorization: Bearer <key>`` from now on (None: no auth)."""
        self._state.api_key = key

    def set_rate_limit(self, rps: float | None) -> None:
        """Allow ``rps`` API requests per second (None: unlimited)."""
        if rps is not None and rps <= 0:
            raise ValueError("rps must be positive")
        self._state.rate_limit = rps

    def force_status(self, value: str, next_n: int = 1) -> None:
        """The next ``next_n`` status responses report ``value`` as the job status."""
        with self._state.lock:
            self._state.forced_status = (value, next_n)

    def reset_stats(self) -> None:
        """Zero every counter."""
        self._state.stats = Stats()
