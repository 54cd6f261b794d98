"""The request handlers: Radient's documented endpoints and nothing else.

Authentication, the rate limit, counting and faults happen in the middleware (``_app.py``), so
each handler only speaks the API. Handlers raise ``ApiError`` for client errors.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import secrets
import time
from typing import Any

from aiohttp import web

from ._jobs import COMPLETED, FAILED, PROCESSING, Job
from ._responses import ApiError, json_response, retry_headers
from ._sources import SourceImage
from ._state import ServerState
from ._validation import GenerateParams, check_provider, parse_generate

__all__ = [
    "STATE",
    "handle_file",
    "handle_generate",
    "handle_providers",
    "handle_stats",
    "handle_status",
]

STATE = web.AppKey("radient_state", ServerState)
MAX_IDEMPOTENCY_KEY = 255
_OFFLOAD_JSON_BYTES = 1 << 20


def _files_base(request: web.Request, state: ServerState) -> str:
    """Where image URLs point: a configured/CDN origin, else this API's own origin and base."""
    if state.image_base is not None:
        return state.image_base
    return f"{request.scheme}://{request.host}{state.config.base_path}"


def _view(
    request: web.Request, state: ServerState, job: Job, now: float, forced: str | None = None
) -> dict[str, Any]:
    """The job's JSON: ``request_id``, ``status``, ``images``, ``provider``, ``error``, ``seed``."""
    status = job.status(now)
    images = None
    if status == COMPLETED:
        prefix = f"{_files_base(request, state)}/files/{job.request_id}/"
        images = [
            {
                "url": f"{prefix}{index}.png",
                "width": job.width,
                "height": job.height,
                "content_type": "image/png",
            }
            for index in range(job.num_images)
        ]
    return {
        "request_id": job.request_id,
        "status": forced if forced is not None else status,
        "images": images,
        "provider": job.provider,
        "error": job.error if status == FAILED else None,
        "seed": job.seed,
    }


def _poll_hint(state: ServerState, job: Job, status: str, now: float) -> dict[str, str] | None:
    if status != PROCESSING or not state.config.poll_hint:
        return None
    return {"poll-after-ms": str(max(1, math.ceil((job.finish_at - now) * 1000)))}


async def _read_json(request: web.Request) -> tuple[Any, int]:
    raw = await request.read()
    try:
        if len(raw) > _OFFLOAD_JSON_BYTES:  # a big data: URI: parse it off the event loop
            return await asyncio.to_thread(json.loads, raw), len(raw)
        return json.loads(raw), len(raw)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ApiError("the body must be a JSON object", status=400, code="invalid_json") from None


def _idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None or not key.strip():
        return None
    if len(key) > MAX_IDEMPOTENCY_KEY:
        raise ApiError(
            f"Idempotency-Key must be at most {MAX_IDEMPOTENCY_KEY} characters",
            field="Idempotency-Key",
            status=400,
            code="invalid_header",
        )
    return key


async def handle_generate(request: web.Request) -> web.Response:
    """``POST {base}/images/generate``: validate, create a job (or replay one), answer it."""
    state = request.app[STATE]
    stats = state.stats
    body, size = await _read_json(request)
    stats.saw_body(body, size)
    params = parse_generate(body, state.config.providers)
    key = _idempotency_key(request)
    now = time.monotonic()
    jobs = state.jobs
    jobs.sweep(now)
    if key is not None:
        stats.saw_key(key)
        known = jobs.by_key(key, now)
        if known is not None:
            stats.idempotent_replays += 1
            return await _answer(request, state, known, params.sync_mode)
    if len(jobs) >= state.config.max_live_jobs:
        stats.live_jobs_refused += 1
        raise ApiError(
            f"too many live jobs (limit {state.config.max_live_jobs}); retry later",
            status=429,
            code="too_many_jobs",
            headers=retry_headers(1.0),
        )
    source = None
    if params.source_url is not None:
        source = await state.sources.load(params.source_url)
        if key is not None:  # a twin request may have created the job while we fetched
            known = jobs.by_key(key, time.monotonic())
            if known is not None:
                stats.idempotent_replays += 1
                return await _answer(request, state, known, params.sync_mode)
    job = _create_job(state, params, key, source, time.monotonic())
    return await _answer(request, state, job, params.sync_mode)


def _create_job(
    state: ServerState,
    params: GenerateParams,
    key: str | None,
    source: SourceImage | None,
    now: float,
) -> Job:
    finish_at = now + state.job_duration()
    job = Job(
        request_id="imgreq_" + secrets.token_hex(12),
        provider=params.provider,
        prompt=params.prompt,
        num_images=params.num_images,
        width=params.width,
        height=params.height,
        seed=params.seed if params.seed is not None else state.new_seed(),
        finish_at=finish_at,
        expires_at=finish_at + state.config.job_ttl,
        error=state.failure_for(params.prompt),
        source=source,
        strength=params.strength,
        idempotency_key=key,
    )
    state.jobs.add(job)
    state.stats.jobs_created += 1
    return job


async def _answer(request: web.Request, state: ServerState, job: Job, sync: bool) -> web.Response:
    """The job as JSON; in sync mode, after it finished (and with inline images if asked)."""
    now = time.monotonic()
    if sync and now < job.finish_at:
        await asyncio.sleep(job.finish_at - now)
        now = time.monotonic()
    view = _view(request, state, job, now)
    if sync and job.provider == "inline" and view["images"]:
        for index, image in enumerate(view["images"]):
            data = await state.images.png(job, index)
            image["url"] = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return json_response(view, headers=_poll_hint(state, job, view["status"], now))


async def handle_status(request: web.Request) -> web.Response:
    """``GET {base}/images/status?request_id=…&provider=…``: the job, or 404."""
    state = request.app[STATE]
    state.stats.status_calls += 1
    request_id = request.query.get("request_id")
    if not request_id:
        raise ApiError("request_id is required", field="request_id", code="missing")
    provider = check_provider(request.query.get("provider"), state.config.providers)
    now = time.monotonic()
    job = state.jobs.get(request_id, now)
    if job is None or (provider is not None and provider != job.provider):
        where = f" for provider {provider!r}" if provider is not None else ""
        raise ApiError(
            f"no job {request_id!r}{where} (unknown or expired)",
            field="request_id",
            status=404,
            code="not_found",
        )
    view = _view(request, state, job, now, forced=state.forced_status())
    return json_response(view, headers=_poll_hint(state, job, job.status(now), now))


async def handle_providers(request: web.Request) -> web.Response:
    """``GET {base}/images/providers``: ``{"providers": [...]}``."""
    state = request.app[STATE]
    state.stats.provider_calls += 1
    return json_response({"providers": list(state.config.providers)})


async def handle_file(request: web.Request) -> web.Response:
    """``GET …/files/{request_id}/{index}.png``: a finished job's image; no auth (CDN-like)."""
    state = request.app[STATE]
    now = time.monotonic()
    job = state.jobs.get(request.match_info["request_id"], now)
    index = int(request.match_info["index"])
    if job is None or index >= job.num_images or job.status(now) != COMPLETED:
        raise ApiError(
            "no such image (unknown, unfinished or expired job)", status=404, code="not_found"
        )
    data = await state.images.png(job, index)
    if request.method == "GET":
        state.stats.downloads += 1
    max_age = max(0, int(job.expires_at - now))
    return web.Response(
        body=data,
        content_type="image/png",
        headers={"Cache-Control": f"public, max-age={max_age}, immutable"},
    )


async def handle_stats(request: web.Request) -> web.Response:
    """``GET /_local/stats``: the counters, for tools in another process (not Radient's API)."""
    state = request.app[STATE]
    snapshot = state.stats.snapshot()
    snapshot["live_jobs"] = len(state.jobs)
    snapshot["cached_image_bytes"] = state.images.held_bytes
    return json_response(snapshot)
