"""Fault injection: which request breaks, and how.

Two sources: scripted rules (``controls.inject``: the next N matching requests, or a rate until
cleared) and the configured random rate (``FaultConfig``). ``429`` and the 5xx kinds answer
*instead of* the handler, so a generate they hit creates no job. ``slow``, ``reset`` and
``truncate`` act *after* the handler ran: on generate the job exists but the client may never learn
its id — the case an ``Idempotency-Key`` makes safe to retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading

import attrs
from aiohttp import web

from ._config import ENDPOINTS, FAULT_KINDS, FaultConfig
from ._responses import json_error, retry_headers

__all__ = ["AFTER_HANDLER", "FaultPlan", "FaultRule", "answer_instead", "break_response"]

AFTER_HANDLER = frozenset({"slow", "reset", "truncate"})
_HTML = (
    "<!DOCTYPE html><html><head><title>{0}</title></head>"
    "<body><center><h1>{0}</h1></center><hr><center>nginx</center></body></html>"
)
_TITLES = {500: "500 Internal Server Error", 502: "502 Bad Gateway"}
_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST instead of FIN


@attrs.define
class FaultRule:
    """A scripted fault: for the next ``remaining`` matching requests, or at ``rate`` while set."""

    kind: str
    endpoints: frozenset[str]
    remaining: int | None = None
    rate: float = 1.0
    retry_after: float = 1.0
    delay: float = 0.5


def check_rule(kind: str, endpoints: frozenset[str], next_n: int | None, rate: float) -> None:
    """Raise ``ValueError`` for a rule that makes no sense."""
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
    unknown = sorted(endpoints - set(ENDPOINTS))
    if unknown or not endpoints:
        raise ValueError(f"unknown endpoints {unknown}; known: {', '.join(ENDPOINTS)}")
    if next_n is not None and (
        isinstance(next_n, bool) or not isinstance(next_n, int) or next_n < 1
    ):
        raise ValueError(f"next_n must be a positive integer, got {next_n!r}")
    if not 0 <= rate <= 1:
        raise ValueError(f"rate must be between 0 and 1, got {rate!r}")


class FaultPlan:
    """Decides, per request, which fault (if any) to inject. Rules may be added from any thread."""

    def __init__(self, config: FaultConfig, rng: random.Random) -> None:
        self._config = config
        self._random = rng
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def add(self, rule: FaultRule) -> None:
        """Script a fault."""
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        """Remove every scripted fault (the configured random rate stays)."""
        with self._lock:
            self._rules.clear()

    def pick(self, endpoint: str) -> FaultRule | None:
        """The fault to inject into this request, if any: scripted rules first, then random."""
        if self._rules:
            with self._lock:
                for rule in self._rules:
                    if endpoint not in rule.endpoints:
                        continue
                    if rule.remaining is not None:
                        rule.remaining -= 1
                        if rule.remaining <= 0:
                            self._rules.remove(rule)
                        return rule
                    if self._random.random() < rule.rate:
                        return rule
        config = self._config
        if config.rate > 0 and endpoint in config.endpoints and self._random.random() < config.rate:
            return FaultRule(
                self._random.choice(config.kinds),
                frozenset(config.endpoints),
                retry_after=config.retry_after,
                delay=config.slow_delay,
            )
        return None


def answer_instead(rule: FaultRule) -> web.Response | None:
    """The response that replaces the handler's for a 429/5xx fault (None for the other kinds)."""
    kind = rule.kind
    if kind == "429":
        return json_error(
            429,
            "too many requests (injected)",
            code="rate_limited",
            headers=retry_headers(rule.retry_after),
        )
    if kind == "503":
        return json_error(
            503,
            "service temporarily unavailable (injected)",
            code="unavailable",
            headers=retry_headers(rule.retry_after),
        )
    if kind in ("500", "502"):
        status = int(kind)
        return web.Response(
            text=_HTML.format(_TITLES[status]), status=status, content_type="text/html"
        )
    return None


async def break_response(
    rule: FaultRule, request: web.Request, response: web.StreamResponse
) -> web.StreamResponse:
    """Apply an after-handler fault: hold the answer back, or cut it short."""
    if rule.kind == "slow":
        await asyncio.sleep(rule.delay)
        return response
    body = response.body if isinstance(response, web.Response) else None
    data = bytes(body) if isinstance(body, (bytes, bytearray)) else b""
    broken = web.StreamResponse(status=response.status, reason=response.reason)
    broken.headers.update(response.headers)
    broken.content_length = max(1, len(data))  # the full length is announced...
    await broken.prepare(request)
    await broken.write(data[: len(data) // 2])  # ...half is sent...
    transport = request.transport
    if transport is not None:  # ...and the connection ends
        if rule.kind == "reset":
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):  # the socket may already be gone
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
            transport.abort()
        else:
            transport.close()
    return broken
