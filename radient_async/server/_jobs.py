"""Jobs and their store: status derived from the clock, expiry in a heap, idempotency keys.

A job knows when it finishes, so its status is a comparison with ``time.monotonic()``: 100,000 live
jobs cost no task and no timer. A finished job, its idempotency key and its cached files live for
``job_ttl`` seconds after it finishes; expired jobs are dropped lazily (on lookup, and from the
front of the expiry heap on every generate) and by the app's periodic sweeper.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

import attrs

from ._render import RenderKey
from ._sources import SourceImage

__all__ = ["COMPLETED", "FAILED", "PROCESSING", "Job", "JobStore"]

PROCESSING, COMPLETED, FAILED = "PROCESSING", "COMPLETED", "FAILED"


@attrs.frozen(eq=False)
class Job:
    """One generation job as the server keeps it (immutable once created)."""

    request_id: str
    provider: str
    prompt: str
    num_images: int
    width: int
    height: int
    seed: int
    finish_at: float
    expires_at: float
    error: str | None = None
    source: SourceImage | None = None
    strength: float | None = None
    idempotency_key: str | None = None

    def status(self, now: float) -> str:
        """``PROCESSING`` until ``finish_at``, then ``FAILED`` (with an error) or ``COMPLETED``."""
        if now < self.finish_at:
            return PROCESSING
        return FAILED if self.error is not None else COMPLETED

    def render_key(self, index: int) -> RenderKey:
        """What determines the bytes of image ``index``."""
        return RenderKey(
            self.provider,
            self.prompt,
            self.seed,
            index,
            self.width,
            self.height,
            self.source.digest if self.source is not None else None,
            self.strength if self.source is not None else None,
        )


class JobStore:
    """Live jobs by id and by idempotency key, dropped once expired.

    ``on_drop`` is called with every job that leaves the store (to forget its cached files).
    """

    def __init__(self, on_drop: Callable[[Job], None] | None = None) -> None:
        self._jobs: dict[str, Job] = {}
        self._by_key: dict[str, Job] = {}
        self._expiry: list[tuple[float, str]] = []
        self._on_drop = on_drop

    def __len__(self) -> int:
        return len(self._jobs)

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._jobs

    def add(self, job: Job) -> None:
        """Keep ``job`` until it expires (and remember its idempotency key as long)."""
        self._jobs[job.request_id] = job
        if job.idempotency_key is not None:
            self._by_key[job.idempotency_key] = job
        heapq.heappush(self._expiry, (job.expires_at, job.request_id))

    def get(self, request_id: str, now: float) -> Job | None:
        """The live job with this id, or None (unknown or expired)."""
        job = self._jobs.get(request_id)
        if job is not None and now >= job.expires_at:
            self._drop(job)
            return None
        return job

    def by_key(self, key: str, now: float) -> Job | None:
        """The live job created with this ``Idempotency-Key``, or None."""
        job = self._by_key.get(key)
        if job is not None and now >= job.expires_at:
            self._drop(job)
            return None
        return job

    def sweep(self, now: float) -> int:
        """Drop every expired job; returns how many. Cheap when nothing expired."""
        dropped = 0
        expiry = self._expiry
        while expiry and expiry[0][0] <= now:
            _, request_id = heapq.heappop(expiry)
            job = self._jobs.get(request_id)
            if job is not None and now >= job.expires_at:
                self._drop(job)
                dropped += 1
        return dropped

    def clear(self) -> None:
        """Drop every job (at shutdown)."""
        for job in list(self._jobs.values()):
            self._drop(job)
        self._expiry.clear()

    def _drop(self, job: Job) -> None:
        if self._jobs.pop(job.request_id, None) is None:
            return
        key = job.idempotency_key
        if key is not None and self._by_key.get(key) is job:
            del self._by_key[key]
        if self._on_drop is not None:
            self._on_drop(job)
