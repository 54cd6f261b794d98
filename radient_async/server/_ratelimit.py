"""The server's rate limit on API endpoints: a token bucket, burst = max(1, rate)."""

from __future__ import annotations

__all__ = ["TokenBucket"]


class TokenBucket:
    """``rate`` tokens per second, holding at most ``max(1, rate)``; starts full."""

    def __init__(self, rate: float, now: float) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be positive, got {rate!r}")
        self.rate = rate
        self.burst = max(1.0, rate)
        self._tokens = self.burst
        self._at = now

    def take(self, now: float) -> float | None:
        """Spend a token: None when allowed, else the seconds until one is available."""
        tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if tokens >= 1:
            self._tokens = tokens - 1
            return None
        self._tokens = tokens
        return (1 - tokens) / self.rate
