"""Pure request building and response deciphering for the Radient API (no I/O here).

``build_*`` functions turn intentions into ``HttpRequest`` values; ``decipher_*`` functions turn an
``HttpResponse`` into typed data or raise the matching error from ``_errors``. Nothing in this
module awaits, so every rule about the wire format is tested without a network.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urljoin

from ._convert import WireJob, WireProviders, request_to_wire, structure, structure_job
from ._endpoint import ApiEndpoint, HttpRequest, HttpResponse, parse_url
from ._errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    MalformedResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from ._models import GenerationRequest
from ._retry import parse_retry_after

__all__ = [
    "JobAnswer",
    "build_generate",
    "build_providers",
    "build_status",
    "check_answer",
    "decipher_job",
    "decipher_providers",
    "error_for_response",
    "incoherent_answer",
    "poll_hint",
    "read_job",
    "redirect_for",
]

# One encoder for every request body: ``json.dumps`` with options builds a new one per call.
_encode_json = json.JSONEncoder(separators=(",", ":")).encode

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_SNIPPET = 300
_MAX_ERROR_JSON = 64 * 1024


def build_generate(
    api: ApiEndpoint, request: GenerationRequest, idempotency_key: str
) -> HttpRequest:
    """``POST /images/generate`` with the request body and its idempotency key."""
    body = _encode_json(request_to_wire(request)).encode()
    headers = api.headers({"Content-Type": "application/json", "Idempotency-Key": idempotency_key})
    return HttpRequest("POST", f"{api.base_url}/images/generate", headers, body)


def build_status(api: ApiEndpoint, request_id: str, provider: str | None) -> HttpRequest:
    """``GET /images/status`` for one job, with its provider when known."""
    params = {"request_id": request_id}
    if provider:
        params["provider"] = provider
    return HttpRequest("GET", f"{api.base_url}/images/status?{urlencode(params)}", api.headers())


def build_providers(api: ApiEndpoint) -> HttpRequest:
    """``GET /images/providers``."""
    return HttpRequest("GET", f"{api.base_url}/images/providers", api.headers())


def redirect_for(
    request: HttpRequest, response: HttpResponse, api: ApiEndpoint
) -> HttpRequest | None:
    """The request to send next if ``response`` is a redirect, else ``None``.

    Only http(s) targets are followed; ``Authorization`` is dropped when the target is not the API's
    own origin, and 301/302/303 turn a POST into a bodiless GET as browsers do.
    """
    location = response.headers.get("Location")
    if response.status not in _REDIRECTS or not location:
        return None
    try:
        target = urljoin(request.url, location)
    except ValueError:
        target = location
    parts = parse_url(target)
    if parts is None or parts.username is not None or parts.password is not None:
        raise MalformedResponseError(f"refusing redirect to a malformed URL {target[:200]!r}")
    if parts.scheme not in ("http", "https"):
        raise MalformedResponseError(f"refusing redirect to non-http URL {target[:200]!r}")
    headers = dict(request.headers)
    if not api.is_own_origin(target):
        headers.pop("Authorization", None)
    method, body = request.method, request.body
    if response.status in (301, 302, 303) and method == "POST":
        method, body = "GET", None
        headers.pop("Content-Type", None)
    return HttpRequest(method, target, headers, body)


def _decode_json(response: HttpResponse, what: str) -> Any:
    """The body as JSON (the body already scrubbed of the key), or ``MalformedResponseError``."""
    try:
        return json.loads(response.body)
    except (ValueError, RecursionError):  # bad JSON, bad UTF-8, a 5,000-digit int, 100k deep
        snippet = _snippet(response.body)
        raise MalformedResponseError(
            f"{what}: expected JSON, got {_content_type(response)} "
            f"(HTTP {response.status}): {snippet!r}",
            status=response.status,
            body=snippet,
        ) from None


def _snippet(body: bytes | bytearray) -> str:
    text = body[:_SNIPPET].decode("utf-8", "replace")
    return text + ("…" if len(body) > _SNIPPET else "")


def _content_type(response: HttpResponse) -> str:
    return response.headers.get("Content-Type", "no content type").split(";")[0]


_ERROR_TYPES: Mapping[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: BadRequestError,
    422: BadRequestError,
    429: RateLimitError,
}


def error_for_response(
    response: HttpResponse, api: ApiEndpoint, *, request_id: str | None = None
) -> APIError:
    """The typed error for a 4xx/5xx response, with the server's message when it gave one."""
    response = api.scrub(response)  # before the body is cut: a key across the cut must not leak
    snippet = _snippet(response.body)
    message, code, field = _error_details(response.body)
    message = message or f"{_content_type(response)} body: {snippet!r}"
    status = response.status
    cls = _ERROR_TYPES.get(status) or (ServerError if status >= 500 else BadRequestError)
    text = f"HTTP {status}: {message}"
    if request_id:
        text += f" (request {request_id})"
    kwargs: dict[str, Any] = {
        "status": status,
        "request_id": request_id,
        "body": snippet,
        "code": code,
        "field": field,
    }
    if cls is RateLimitError:
        return RateLimitError(text, retry_after=parse_retry_after(response.headers), **kwargs)
    return cls(text, **kwargs)


def _error_details(body: bytes | bytearray) -> tuple[str | None, str | None, str | None]:
    """(message, code, field) from ``{"error": ...}`` bodies; Nones when the body is not that."""
    if len(body) > _MAX_ERROR_JSON:  # no error object is this large; parsing it would stall
        return None, None, None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None, None, None
    if not isinstance(data, dict):
        return None, None, None
    error = data.get("error", data.get("detail", data.get("message")))
    if isinstance(error, dict):
        data, error = error, error.get("message")
    code, field = data.get("code"), data.get("field")
    return (
        error if isinstance(error, str) else None,
        code if isinstance(code, str) else None,
        field if isinstance(field, str) else None,
    )


def check_answer(response: HttpResponse, api: ApiEndpoint, request_id: str | None) -> None:
    """Raise the typed error a non-2xx answer stands for."""
    if response.status >= 400:
        raise error_for_response(response, api, request_id=request_id)
    if not 200 <= response.status < 300:
        raise MalformedResponseError(
            f"unexpected HTTP {response.status} from the API", status=response.status
        )


def decipher_job(
    response: HttpResponse, api: ApiEndpoint, *, request_id: str | None = None
) -> WireJob:
    """A generate or status response as a ``WireJob``, or the typed error it stands for."""
    check_answer(response, api, request_id)
    return read_job(api.scrub(response), request_id=request_id)[0]


# A job answer, and why it cannot be true of the job asked for (None if it can be).
JobAnswer = tuple[WireJob, MalformedResponseError | None]


def read_job(
    response: HttpResponse, *, request_id: str | None = None, max_images: int | None = None
) -> JobAnswer:
    """A 2xx job answer, already scrubbed of the key, as a ``WireJob``; with ``max_images``, also
    whether it is believable (``incoherent_answer``).

    Past ``max_images`` the image list is cut before it is structured (5,000 listed images cost
    no 5,000 objects). Pure, with picklable arguments and result: ``_offload`` runs it in a
    worker process for large answers.
    """
    data = _decode_json(response, "job")
    listed = data.get("images") if isinstance(data, dict) else None
    count = len(listed) if isinstance(listed, list) else 0
    if max_images is not None and count > max_images + 1:
        data = {**data, "images": listed[: max_images + 1]}  # type: ignore[index]
    job = structure_job(data)
    if not job.request_id:
        raise MalformedResponseError("job response has an empty request_id")
    if request_id is not None and job.request_id != request_id:
        raise MalformedResponseError(
            f"asked for job {request_id} but the API answered for {job.request_id}"
        )
    problem = None if max_images is None else incoherent_answer(job, max_images, listed=count)
    return job, problem


def incoherent_answer(
    job: WireJob, max_images: int, *, listed: int | None = None
) -> MalformedResponseError | None:
    """Why a well-formed job answer cannot be true of the job asked for, or None if it can be.

    A finished job has its images, and no more than were asked for: a ``COMPLETED`` with none is
    a success that delivers nothing, and 5,000 images for ``num_images=1`` would write 5,000 files.
    ``listed`` is how many the answer listed, when ``job.images`` was cut short.
    """
    if job.status != "COMPLETED":
        return None
    count = len(job.images or ()) if listed is None else listed
    if count == 0:
        return MalformedResponseError(f"job {job.request_id} is COMPLETED but lists no images")
    if count > max_images:
        return MalformedResponseError(
            f"job {job.request_id} lists {count} images; at most {max_images} were asked for"
        )
    return None


def decipher_providers(response: HttpResponse, api: ApiEndpoint) -> tuple[str, ...]:
    """The provider ids from ``GET /images/providers``."""
    check_answer(response, api, None)
    data = _decode_json(api.scrub(response), "providers")
    listing: WireProviders = structure(data, WireProviders, what="providers")
    return tuple(listing.providers)


def poll_hint(response: HttpResponse) -> float | None:
    """Seconds the server suggests waiting before the next status poll, if it said."""
    return parse_retry_after(response.headers)
