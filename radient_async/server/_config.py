"""The local server's configuration: frozen, validated values."""

from __future__ import annotations

import attrs

__all__ = ["ENDPOINTS", "FAULT_KINDS", "FaultConfig", "ServerConfig"]

FAULT_KINDS = ("429", "500", "502", "503", "reset", "slow", "truncate")
ENDPOINTS = ("generate", "status", "providers", "files")


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{attribute.name} must be a non-negative number, got {value!r}")


def _optional_positive(
    _: object, attribute: attrs.Attribute[float | None], value: float | None
) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0
    ):
        raise ValueError(f"{attribute.name} must be a positive number or None, got {value!r}")


def _fault_kinds(
    _: object, attribute: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]
) -> None:
    unknown = set(value) - set(FAULT_KINDS)
    if unknown:
        raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(FAULT_KINDS)}")


def _endpoints(
    _: object, attribute: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]
) -> None:
    unknown = set(value) - set(ENDPOINTS)
    if unknown:
        raise ValueError(f"unknown endpoints {sorted(unknown)}; known: {', '.join(ENDPOINTS)}")


@attrs.frozen(kw_only=True)
class FaultConfig:
    """Random fault injection: each request to ``endpoints`` fails with probability ``rate``."""

    rate: float = attrs.field(default=0.0, validator=_non_negative)
    kinds: tuple[str, ...] = attrs.field(
        default=FAULT_KINDS, converter=tuple, validator=_fault_kinds
    )
    endpoints: tuple[str, ...] = attrs.field(
        default=ENDPOINTS, converter=tuple, validator=_endpoints
    )
    retry_after: float = attrs.field(default=1.0, validator=_non_negative)
    slow_delay: float = attrs.field(default=0.5, validator=_non_negative)

    def __attrs_post_init__(self) -> None:
        if self.rate > 1:
            raise ValueError("rate must be between 0 and 1")


@attrs.frozen(kw_only=True)
class ServerConfig:
    """How the local server behaves; every field has a safe default (loopback, no auth)."""

    host: str = "127.0.0.1"
    port: int = 0
    api_key: str | None = None
    latency: float = attrs.field(default=0.0, validator=_non_negative)
    latency_jitter: float = attrs.field(default=0.0, validator=_non_negative)
    providers: tuple[str, ...] = attrs.field(
        default=("default", "sketch", "inline"), converter=tuple
    )
    image_base_url: str | None = None
    separate_image_origin: bool = False
    job_ttl: float = attrs.field(default=3600.0, validator=_non_negative)
    max_live_jobs: int = 100_000
    max_body_bytes: int = 32 * 1024 * 1024
    max_source_bytes: int = 20 * 1024 * 1024
    rate_limit: float | None = attrs.field(default=None, validator=_optional_positive)
    allow_remote_sources: bool = False
    poll_hint: bool = False
    min_image_bytes: int = 0
    seed: int | None = None
    faults: FaultConfig = attrs.field(factory=FaultConfig)

    def __attrs_post_init__(self) -> None:
        if not self.providers or "default" not in self.providers:
            raise ValueError("providers must include 'default'")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be 0..65535")
        if self.max_live_jobs < 1 or self.max_body_bytes < 1024 or self.min_image_bytes < 0:
            raise ValueError("max_live_jobs, max_body_bytes and min_image_bytes must be sensible")
