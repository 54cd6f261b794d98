"""The aiohttp.web application: Radient's documented endpoints, plus faults, limits and counters.

Requests pass one middleware that counts them, checks the key, applies the rate limit and injects
scripted or random faults; the handlers then only speak the API. Faults that stop a request from
reaching its handler (429, 5xx) never create a job; ``reset`` and ``truncate`` break the response
*after* the handler ran, the realistic case where a client cannot know whether its job exists.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import math
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from PIL import Image

from radient_async._protocol import is_loopback_host

from ._config import ServerConfig
from ._render import Renderer, RenderKey
from ._state import FaultRule, Job, ServerState
from ._validation import GenerateParams, InvalidRequest, decode_data_uri, open_image, parse_generate

__all__ = ["STATE", "create_app", "create_files_app"]

STATE = web.AppKey("radient_state", ServerState)
RENDERER = web.AppKey("radient_renderer", Renderer)
SOURCES = web.AppKey("radient_sources", dict)
FETCHER = web.AppKey("radient_fetcher", aiohttp.ClientSession)
_BIG_IMAGE = 512 * 512
_HTML_ERROR = (
    "<html><head><title>{0}</title></head><body><h1>{0}</h1><p>upstream trouble</p></body></html>"
)
_REASONS = {500: "500 Internal Server Error", 502: "502 Bad Gateway"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A compact JSON response."""
    return web.Response(
        body=json.dumps(data, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def json_error(
    status: int,
    message: str,
    *,
    code: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """The server's error shape: ``{"error", "code", "field"}``."""
    return json_response({"error": message, "code": code, "field": field}, status, headers)


def _retry_headers(seconds: float) -> dict[str, str]:
    return {
        "Retry-After": str(max(0, math.ceil(seconds))),
        "retry-after-ms": str(max(0, round(seconds * 1000))),
    }


# -- middleware ---------------------------------------------------------------------------------


def _endpoint(request: web.Request) -> str:
    return request.match_info.route.name or "unknown"


@web.middleware
async def radient_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count, authenticate, rate-limit and inject faults around every request."""
    state = request.app[STATE]
    endpoint = _endpoint(request)
    stats = state.stats
    stats.requests[endpoint] += 1
    if "Authorization" in request.headers:
        stats.authorized_requests[endpoint] += 1
    if endpoint != "files" and endpoint != "unknown":
        refusal = _authorize(request, state) or _rate_limit(state)
        if refusal is not None:
            return refusal
    fault = state.pick_fault(endpoint) if endpoint != "unknown" else None
    if fault is not None:
        stats.faults[fault.kind] += 1
        early = await _early_fault(fault)
        if early is not None:
            return early
    try:
        response = await handler(request)
    except InvalidRequest as exc:
        return json_error(exc.status, exc.message, code=exc.code, field=exc.field)
    except web.HTTPRequestEntityTooLarge:
        return json_error(413, "request body too large", code="too_large")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return json_error(exc.status, exc.reason, code="http_error")
    if fault is not None and fault.kind in ("reset", "truncate"):
        return await _broken_response(request, response, reset=fault.kind == "reset")
    return response


def _authorize(request: web.Request, state: ServerState) -> web.Response | None:
    key = state.api_key
    if key is None:
        return None
    given = request.headers.get("Authorization", "")
    expected = f"Bearer {key}"
    if hmac.compare_digest(given.encode(), expected.encode()):
        return None
    return json_error(
        401,
        "missing or invalid API key",
        code="unauthorized",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _rate_limit(state: ServerState) -> web.Response | None:
    wait = state.take_token(time.monotonic())
    if wait is None:
        return None
    state.stats.rate_limited += 1
    return json_error(429, "rate limit exceeded", code="rate_limited", headers=_retry_headers(wait))


async def _early_fault(fault: FaultRule) -> web.StreamResponse | None:
    if fault.kind == "429":
        return json_error(
            429,
            "too many requests (injected)",
            code="rate_limited",
            headers=_retry_headers(fault.retry_after),
        )
    if fault.kind in ("500", "502"):
        status = int(fault.kind)
        return web.Response(
            text=_HTML_ERROR.format(_REASONS[status]), status=status, content_type="text/html"
        )
    if fault.kind == "503":
        return json_error(
            503,
            "service unavailable (injected)",
            code="unavailable",
            headers=_retry_headers(fault.retry_after),
        )
    if fault.kind == "slow":
        await asyncio.sleep(fault.delay)
    return None


async def _broken_response(
    request: web.Request, response: web.StreamResponse, *, reset: bool
) -> web.StreamResponse:
    """Announce the full body, send half of it, then cut the connection."""
    body = response.body if isinstance(response, web.Response) else b""
    data = body if isinstance(body, bytes) else b""
    broken = web.StreamResponse(status=response.status, headers=response.headers)
    broken.content_length = max(1, len(data))
    await broken.prepare(request)
    await broken.write(data[: len(data) // 2])
    transport = request.transport
    if transport is not None:
        if reset:
            transport.abort()
        else:
            transport.close()
    return broken


# -- handlers -----------------------------------------------------------------------------------


def _image_url(request: web.Request, state: ServerState, job: Job, index: int) -> str:
    base = state.image_base or f"{request.scheme}://{request.host}/v1"
    return f"{base}/files/{job.request_id}/{index}.png"


def _view(request: web.Request, job: Job, now: float, status: str | None = None) -> dict[str, Any]:
    state = request.app[STATE]
    status = status or job.status(now)
    images = None
    if status == "COMPLETED":
        images = [
            {
                "url": _image_url(request, state, job, i),
                "width": job.width,
                "height": job.height,
                "content_type": "image/png",
            }
            for i in range(job.num_images)
        ]
    return {
        "request_id": job.request_id,
        "status": status,
        "images": images,
        "provider": job.provider,
        "error": job.error if status == "FAILED" else None,
        "seed": job.seed,
    }


async def _inline_images(request: web.Request, job: Job, view: dict[str, Any]) -> None:
    """Replace image URLs by ``data:`` URIs (the ``inline`` provider in sync mode)."""
    for index, image in enumerate(view["images"] or ()):
        data = await _render(request, job, index)
        image["url"] = "data:image/png;base64," + _b64(data)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


async def _read_json(request: web.Request) -> Any:
    raw = await request.read()
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidRequest(
            "the body must be valid JSON", status=400, code="invalid_json"
        ) from None


async def handle_generate(request: web.Request) -> web.Response:
    """``POST /images/generate``."""
    state = request.app[STATE]
    body = await _read_json(request)
    params = parse_generate(body, state.config.providers)
    now = time.monotonic()
    key = request.headers.get("Idempotency-Key")
    if key:
        replay = _replay(request, state, key, now)
        if replay is not None:
            return await _answer(request, replay, params)
    if len(state.jobs) >= state.config.max_live_jobs:
        state.sweep(now)
        if len(state.jobs) >= state.config.max_live_jobs:
            return json_error(
                429, "too many live jobs", code="too_many_jobs", headers=_retry_headers(1.0)
            )
    source_digest = None
    if params.source_url is not None:
        picture = await _load_source(request, params.source_url)
        picture.thumbnail((512, 512))
        source_digest = hashlib.sha256(picture.tobytes()).hexdigest()[:16]
        request.app[SOURCES][source_digest] = picture
    job = _create_job(state, params, now, source_digest)
    state.stats.generate_bodies.append(body)
    if key:
        state.stats.idempotency_keys.append(key)
        state.idempotency[key] = (job.request_id, job.expires_at)
    return await _answer(request, job, params)


def _create_job(
    state: ServerState, params: GenerateParams, now: float, source_digest: str | None
) -> Job:
    ttl = state.config.job_ttl
    finish = now + state.latency_for_job()
    job = Job(
        request_id="imgreq_" + secrets.token_hex(12),
        provider=params.provider,
        prompt=params.prompt,
        num_images=params.num_images,
        width=params.width,
        height=params.height,
        seed=params.seed if params.seed is not None else state.random.randrange(2**31),
        created=now,
        finish_at=finish,
        expires_at=finish + ttl,
        error=state.next_failure(params.prompt),
        source_digest=source_digest,
        strength=params.strength if source_digest else None,
    )
    state.jobs[job.request_id] = job
    state.stats.jobs_created += 1
    return job


def _replay(request: web.Request, state: ServerState, key: str, now: float) -> Job | None:
    known = state.idempotency.get(key)
    if known is None:
        return None
    job = state.lookup(known[0], now)
    if job is None:
        return None
    state.stats.idempotent_replays += 1
    return job


async def _answer(request: web.Request, job: Job, params: GenerateParams) -> web.Response:
    now = time.monotonic()
    if params.sync_mode and now < job.finish_at:
        await asyncio.sleep(job.finish_at - now)
        now = time.monotonic()
    view = _view(request, job, now)
    if params.sync_mode and job.provider == "inline" and view["images"]:
        await _inline_images(request, job, view)
    return json_response(view, headers=_poll_headers(request, job, view, now))


def _poll_headers(
    request: web.Request, job: Job, view: dict[str, Any], now: float
) -> dict[str, str] | None:
    if view["status"] != "PROCESSING" or not request.app[STATE].config.poll_hint:
        return None
    return {"poll-after-ms": str(max(1, math.ceil((job.finish_at - now) * 1000)))}


async def _load_source(request: web.Request, url: str) -> Image.Image:
    state = request.app[STATE]
    limit = state.config.max_source_bytes
    if url[:5].lower() == "data:":
        return decode_data_uri(url, limit)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest("source_url must be an http(s) URL or a data: URI", field="source_url")
    if not state.config.allow_remote_sources and not is_loopback_host(parts.hostname):
        raise InvalidRequest(
            "source_url hosts other than loopback are not fetched by this server "
            "(start it with allow_remote_sources)",
            field="source_url",
        )
    try:
        async with request.app[FETCHER].get(url, allow_redirects=False) as response:
            if response.status != 200:
                raise InvalidRequest(
                    f"source_url answered HTTP {response.status}", field="source_url"
                )
            data = await response.content.read(limit + 1)
    except (aiohttp.ClientError, asyncio.TimeoutError):
        raise InvalidRequest("source_url could not be fetched", field="source_url") from None
    if len(data) > limit:
        raise InvalidRequest(
            "source_url image is too large", field="source_url", status=413, code="too_large"
        )
    return open_image(data, "source_url")


async def handle_status(request: web.Request) -> web.Response:
    """``GET /images/status?request_id=…&provider=…``."""
    state = request.app[STATE]
    state.stats.status_calls += 1
    request_id = request.query.get("request_id")
    if not request_id:
        raise InvalidRequest("request_id is required", field="request_id")
    provider = request.query.get("provider")
    if provider is not None and provider not in state.config.providers:
        raise InvalidRequest(f"unknown provider {provider!r}", field="provider")
    now = time.monotonic()
    job = state.lookup(request_id, now)
    if job is None or (provider is not None and provider != job.provider):
        return json_error(404, f"no job {request_id!r}", code="not_found", field="request_id")
    forced = state.take_forced_status()
    view = _view(request, job, now, status=forced)
    return json_response(view, headers=_poll_headers(request, job, view, now))


async def handle_providers(request: web.Request) -> web.Response:
    """``GET /images/providers``."""
    state = request.app[STATE]
    state.stats.provider_calls += 1
    return json_response({"providers": list(state.config.providers)})


async def handle_stats(request: web.Request) -> web.Response:
    """``GET /_local/stats``: the counters, for tools in another process (not part of the API)."""
    return json_response(request.app[STATE].stats.snapshot())


async def _render(request: web.Request, job: Job, index: int) -> bytes:
    renderer = request.app[RENDERER]
    key = RenderKey(
        job.provider,
        job.prompt,
        job.seed,
        index,
        job.width,
        job.height,
        job.source_digest,
        job.strength,
    )
    cached = renderer.cached(key)
    if cached is not None:
        return cached
    source = request.app[SOURCES].get(job.source_digest) if job.source_digest else None
    if job.width * job.height > _BIG_IMAGE:
        return await asyncio.to_thread(renderer.render, key, source)
    return renderer.render(key, source)


async def handle_file(request: web.Request) -> web.Response:
    """``GET …/files/{request_id}/{index}.png``: the rendered image, no auth required."""
    state = request.app[STATE]
    now = time.monotonic()
    job = state.lookup(request.match_info["request_id"], now)
    try:
        index = int(request.match_info["index"])
    except ValueError:
        index = -1
    if job is None or not 0 <= index < job.num_images or job.status(now) != "COMPLETED":
        return json_error(404, "no such image", code="not_found")
    data = await _render(request, job, index)
    state.stats.downloads += 1
    state.stats.images_rendered = request.app[RENDERER].rendered
    return web.Response(
        body=data, content_type="image/png", headers={"Cache-Control": "public, max-age=3600"}
    )


# -- assembly ----------------------------------------------------------------------------------


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Owns the source fetcher and the periodic sweeper of expired jobs."""
    state = app[STATE]
    app[FETCHER] = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=10), cookie_jar=aiohttp.DummyCookieJar()
    )
    sweeper = asyncio.create_task(_sweep_forever(app))
    try:
        yield
    finally:
        sweeper.cancel()
        await asyncio.gather(sweeper, return_exceptions=True)
        await app[FETCHER].close()
        state.sweep(math.inf)


async def _sweep_forever(app: web.Application) -> None:
    """Drop expired jobs, and the source images no live job uses, every half TTL (≤ 30 s)."""
    state = app[STATE]
    period = max(0.05, min(30.0, state.config.job_ttl / 2))
    while True:
        await asyncio.sleep(period)
        state.sweep(time.monotonic())
        live = {job.source_digest for job in state.jobs.values()}
        for digest in [d for d in app[SOURCES] if d not in live]:
            del app[SOURCES][digest]


def _base(state: ServerState) -> web.Application:
    app = web.Application(
        middlewares=[radient_middleware], client_max_size=state.config.max_body_bytes
    )
    app[STATE] = state
    return app


def create_app(
    config: ServerConfig | None = None, *, state: ServerState | None = None
) -> web.Application:
    """The API application (routes under ``/v1``); the app factory for embedding."""
    state = state or ServerState(config or ServerConfig())
    app = _base(state)
    app[RENDERER] = Renderer(min_bytes=state.config.min_image_bytes)
    app[SOURCES] = {}
    app.router.add_post("/v1/images/generate", handle_generate, name="generate")
    app.router.add_get("/v1/images/status", handle_status, name="status")
    app.router.add_get("/v1/images/providers", handle_providers, name="providers")
    app.router.add_get(r"/v1/files/{request_id}/{index:\d+}.png", handle_file, name="files")
    app.router.add_get("/_local/stats", handle_stats, name="stats")
    app.cleanup_ctx.append(_lifecycle)
    return app


def create_files_app(api: web.Application) -> web.Application:
    """A second, CDN-like application serving only the files of ``api`` (another origin)."""
    files = _base(api[STATE])
    files[RENDERER] = api[RENDERER]
    files[SOURCES] = api[SOURCES]
    files.router.add_get(r"/files/{request_id}/{index:\d+}.png", handle_file, name="files")
    return files
