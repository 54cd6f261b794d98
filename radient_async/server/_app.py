"""The aiohttp.web application: routes, the one middleware, and the app's own lifecycle.

The middleware counts every request, checks the key and the rate limit on API endpoints, injects
faults, and turns ``ApiError``/HTTP exceptions into the JSON error shape, so that handlers only
speak the API. The lifecycle (a cleanup context) owns the HTTP client used for ``source_url`` and
the periodic sweeper of expired jobs: no task outlives the app.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from ._config import ENDPOINTS, ServerConfig
from ._controls import Controls
from ._faults import answer_instead, break_response
from ._handlers import (
    STATE,
    handle_file,
    handle_generate,
    handle_providers,
    handle_stats,
    handle_status,
)
from ._responses import ApiError, json_error, retry_headers
from ._state import ServerState
from ._stats import Stats

__all__ = ["CONTROLS", "STATE", "STATS", "create_app", "create_files_app"]

CONTROLS = web.AppKey("radient_controls", Controls)
"""``app[CONTROLS]``: the runtime controls of an app made by ``create_app``."""
STATS = web.AppKey("radient_stats", Stats)
"""``app[STATS]``: the counters of an app made by ``create_app``."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_FAULTABLE = frozenset(ENDPOINTS)
_RATE_LIMITED = frozenset({"generate", "status", "providers"})
_AUTHENTICATED = _RATE_LIMITED | {"stats"}
_FILES_ROUTE = r"/files/{request_id}/{index:\d+}.png"


def _unauthorized(message: str) -> web.Response:
    return json_error(401, message, code="unauthorized", headers={"WWW-Authenticate": "Bearer"})


def _check_key(request: web.Request, expected: bytes) -> web.Response | None:
    given = request.headers.get("Authorization")
    if given is None:
        return _unauthorized("missing API key: send Authorization: Bearer <key>")
    scheme, _, token = given.strip().partition(" ")
    token_bytes = token.strip().encode("utf-8", "surrogateescape")
    if scheme.lower() == "bearer" and hmac.compare_digest(token_bytes, expected):
        return None
    return _unauthorized("invalid API key")


def _http_error(exc: web.HTTPException) -> web.Response:
    if exc.status == 413:
        return json_error(413, "request body too large", code="too_large")
    headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    return json_error(exc.status, exc.reason, code="http_error", headers=headers)


@web.middleware
async def radient_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count, authenticate, rate-limit and inject faults around every request."""
    state = request.app[STATE]
    endpoint = request.match_info.route.name or "unknown"
    stats = state.stats
    stats.requests[endpoint] += 1
    if "Authorization" in request.headers:
        stats.authorized_requests[endpoint] += 1
    if endpoint in _AUTHENTICATED:
        expected = state.expected_token
        if expected is not None:
            refusal = _check_key(request, expected)
            if refusal is not None:
                return refusal
        bucket = state.bucket
        if bucket is not None and endpoint in _RATE_LIMITED:
            wait = bucket.take(time.monotonic())
            if wait is not None:
                stats.rate_limited += 1
                return json_error(
                    429, "rate limit exceeded", code="rate_limited", headers=retry_headers(wait)
                )
    rule = state.faults.pick(endpoint) if endpoint in _FAULTABLE else None
    if rule is not None:
        stats.faults[rule.kind] += 1
        instead = answer_instead(rule)
        if instead is not None:
            return instead
    try:
        response = await handler(request)
    except ApiError as exc:
        response = exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _http_error(exc)
    if rule is not None:
        return await break_response(rule, request, response)
    return response


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Owns the ``source_url`` HTTP client and the periodic sweeper of expired jobs."""
    state = app[STATE]
    await state.sources.open()
    sweeper = asyncio.create_task(_sweep_forever(state), name="radient-server-sweeper")
    try:
        yield
    finally:
        sweeper.cancel()
        await asyncio.gather(sweeper, return_exceptions=True)
        await state.sources.close()
        state.jobs.clear()
        state.images.clear()


async def _sweep_forever(state: ServerState) -> None:
    """Drop expired jobs (and their cached files and sources) every few seconds."""
    period = min(5.0, max(0.05, state.config.job_ttl / 4))
    while True:
        await asyncio.sleep(period)
        state.jobs.sweep(time.monotonic())


def _application(state: ServerState) -> web.Application:
    app = web.Application(
        middlewares=[radient_middleware], client_max_size=state.config.max_body_bytes
    )
    app[STATE] = state
    app[STATS] = state.stats
    app[CONTROLS] = Controls(state)
    return app


def create_app(config: ServerConfig | None = None) -> web.Application:
    """The API as an ``aiohttp.web.Application`` (routes under ``config.base_path``, ``/v1``).

    For embedding or ``web.run_app``; ``app[STATS]`` and ``app[CONTROLS]`` give the counters and
    controls. Image URLs point at this app's own origin unless ``image_base_url`` is set
    (``separate_image_origin`` needs ``LocalServer``/``ThreadedServer`` to start the second port).
    """
    config = config or ServerConfig()
    app = _application(ServerState(config, now=time.monotonic()))
    base = config.base_path
    app.router.add_post(f"{base}/images/generate", handle_generate, name="generate")
    app.router.add_get(f"{base}/images/status", handle_status, name="status")
    app.router.add_get(f"{base}/images/providers", handle_providers, name="providers")
    app.router.add_get(base + _FILES_ROUTE, handle_file, name="files")
    app.router.add_get("/_local/stats", handle_stats, name="stats")
    app.cleanup_ctx.append(_lifecycle)
    return app


def create_files_app(api: web.Application) -> web.Application:
    """A second, CDN-like app serving only the files of ``api`` at ``/files/...`` (no auth)."""
    files = _application(api[STATE])
    files.router.add_get(_FILES_ROUTE, handle_file, name="files")
    return files
