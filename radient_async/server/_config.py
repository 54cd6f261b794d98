"""The local server's configuration: frozen values, validated on construction.

Every field has a safe default (loopback, no auth, no latency, no faults), and a bad value raises
``ValueError`` naming the field, so a typo in a test's config fails loudly instead of silently.
"""

from __future__ import annotations

import math
import re
from typing import Any

import attrs

__all__ = ["ENDPOINTS", "FAULT_KINDS", "FaultConfig", "ServerConfig"]

FAULT_KINDS = ("429", "500", "502", "503", "reset", "slow", "truncate")
"""Every fault the server can inject (see ``docs/server.md``)."""

ENDPOINTS = ("generate", "status", "providers", "files")
"""The endpoints faults can target (and the keys of the per-endpoint counters)."""

_PROVIDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")  # a key must fit an HTTP header unquoted


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not _number(value) or value < 0:
        raise ValueError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not _number(value) or value <= 0:
        raise ValueError(f"{attribute.name} must be a finite number > 0, got {value!r}")


def _optional_positive(
    instance: object, attribute: attrs.Attribute[float | None], value: float | None
) -> None:
    if value is not None:
        _positive(instance, attribute, value)  # type: ignore[arg-type]


def _fraction(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not _number(value) or not 0 <= value <= 1:
        raise ValueError(f"{attribute.name} must be between 0 and 1, got {value!r}")


def _int_at_least(low: int) -> Any:
    def check(_: object, attribute: attrs.Attribute[int], value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{attribute.name} must be an integer >= {low}, got {value!r}")

    return check


def _port(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ValueError(f"port must be an integer 0..65535, got {value!r}")


def _bool(_: object, attribute: attrs.Attribute[bool], value: bool) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{attribute.name} must be True or False, got {value!r}")


def _choices(known: tuple[str, ...]) -> Any:
    def check(
        _: object, attribute: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]
    ) -> None:
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise ValueError(f"unknown {attribute.name} {unknown}; known: {', '.join(known)}")
        if not value:
            raise ValueError(f"{attribute.name} must not be empty")

    return check


def _host(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        raise ValueError(f"host must be a host name or IP address, got {value!r}")


def _api_key(_: object, attribute: attrs.Attribute[str | None], value: str | None) -> None:
    if value is not None and (not isinstance(value, str) or not _HEADER_SAFE.fullmatch(value)):
        # Never echo the key itself.
        raise ValueError("api_key must be None or a non-empty string of visible ASCII characters")


def _providers(
    _: object, attribute: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]
) -> None:
    if not value:
        raise ValueError("providers must name at least one provider")
    for name in value:
        if not isinstance(name, str) or not _PROVIDER_NAME.fullmatch(name):
            raise ValueError(f"providers must match {_PROVIDER_NAME.pattern}, got {name!r}")
    if len(set(value)) != len(value):
        raise ValueError("providers must not repeat")


def _base_path(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if (
        not isinstance(value, str)
        or not value.startswith("/")
        or not value.endswith("/v1")
        or "//" in value
        or any(c.isspace() or c in "?#{}" for c in value)
    ):
        raise ValueError(f"base_path must look like '/v1' or '/prefix/v1', got {value!r}")


def _optional_url(_: object, attribute: attrs.Attribute[str | None], value: str | None) -> None:
    if value is not None and (
        not isinstance(value, str)
        or not value.startswith(("http://", "https://"))
        or any(c.isspace() for c in value)
    ):
        raise ValueError(f"{attribute.name} must be None or an http(s) URL, got {value!r}")


def _strip_slash(value: str | None) -> str | None:
    return value.rstrip("/") if isinstance(value, str) else value


def _seed(_: object, attribute: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"seed must be an integer or None, got {value!r}")


@attrs.frozen(kw_only=True)
class FaultConfig:
    """Random fault injection: each request to one of ``endpoints`` fails with probability ``rate``.

    The kind is drawn uniformly from ``kinds``. ``retry_after`` is what injected 429/503 answers
    ask for; ``slow_delay`` is how long a ``slow`` fault holds the answer back.
    """

    rate: float = attrs.field(default=0.0, validator=_fraction)
    kinds: tuple[str, ...] = attrs.field(
        default=FAULT_KINDS, converter=tuple, validator=_choices(FAULT_KINDS)
    )
    endpoints: tuple[str, ...] = attrs.field(
        default=ENDPOINTS, converter=tuple, validator=_choices(ENDPOINTS)
    )
    retry_after: float = attrs.field(default=1.0, validator=_non_negative)
    slow_delay: float = attrs.field(default=0.5, validator=_non_negative)


def _fault_config(_: object, attribute: attrs.Attribute[FaultConfig], value: FaultConfig) -> None:
    if not isinstance(value, FaultConfig):
        raise ValueError(f"faults must be a FaultConfig, got {value!r}")


@attrs.frozen(kw_only=True)
class ServerConfig:
    """How the local server behaves. See ``docs/server.md`` for each field.

    The first of ``providers`` is the one used when a request names none.
    """

    host: str = attrs.field(default="127.0.0.1", validator=_host)
    port: int = attrs.field(default=0, validator=_port)
    api_key: str | None = attrs.field(default=None, validator=_api_key, repr=False)
    base_path: str = attrs.field(default="/v1", validator=_base_path)
    latency: float = attrs.field(default=0.0, validator=_non_negative)
    latency_jitter: float = attrs.field(default=0.0, validator=_non_negative)
    providers: tuple[str, ...] = attrs.field(
        default=("default", "sketch", "inline"), converter=tuple, validator=_providers
    )
    image_base_url: str | None = attrs.field(
        default=None, converter=_strip_slash, validator=_optional_url
    )
    separate_image_origin: bool = attrs.field(default=False, validator=_bool)
    job_ttl: float = attrs.field(default=3600.0, validator=_positive)
    max_live_jobs: int = attrs.field(default=100_000, validator=_int_at_least(1))
    max_body_bytes: int = attrs.field(default=32 * 1024 * 1024, validator=_int_at_least(1024))
    max_source_bytes: int = attrs.field(default=20 * 1024 * 1024, validator=_int_at_least(1024))
    source_timeout: float = attrs.field(default=10.0, validator=_positive)
    rate_limit: float | None = attrs.field(default=None, validator=_optional_positive)
    allow_remote_sources: bool = attrs.field(default=False, validator=_bool)
    poll_hint: bool = attrs.field(default=False, validator=_bool)
    min_image_bytes: int = attrs.field(default=0, validator=_int_at_least(0))
    render_cache_bytes: int = attrs.field(default=256 * 1024 * 1024, validator=_int_at_least(0))
    seed: int | None = attrs.field(default=None, validator=_seed)
    faults: FaultConfig = attrs.field(factory=FaultConfig, validator=_fault_config)

    @property
    def default_provider(self) -> str:
        """The provider of a request that names none."""
        return self.providers[0]
