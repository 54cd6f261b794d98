"""Hostile and broken servers: every misbehaviour becomes a typed ``RadientError``, promptly.

Each server here is a purpose-built ``aiohttp.web`` app (the ``hostile`` fixture) on loopback. A
test passes only if the SDK raised a ``RadientError`` subclass of the expected type, with a message
that says what went wrong, within a bounded time; never a hang, a raw ``KeyError``/``TypeError``/
``ValueError`` or an aiohttp exception, and never an ``ExceptionGroup``.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import radient_async as ra

pytestmark = pytest.mark.anyio

KEY = "sk-hostile-93c1e07a5fd2b846"
POLL = ra.PollPolicy(first_delay=0.01, min_interval=0.01, max_interval=0.02, timeout=5)
FEW_RETRIES = ra.RetryPolicy(max_retries=1, initial_backoff=0.001, max_backoff=0.002)
# Magic bytes, a body, and the IEND chunk a whole PNG ends with.
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8 + b"\x00\x00\x00\x00IEND\xaeB`\x82"
SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def session_for(base_url: str, **options: Any) -> ra.Session:
    settings_: dict[str, Any] = {"poll": POLL, "retry": FEW_RETRIES}
    settings_.update(options)
    return ra.Session(KEY, base_url, **settings_)


def reply(
    body: bytes | str,
    status: int = 200,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Handler:
    data = body.encode() if isinstance(body, str) else body

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=data, status=status, content_type=content_type, headers=headers)

    return handler


def redirect(location: str, status: int = 302) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status, headers={"Location": location})

    return handler


def completed(request_id: str, *urls: str, content_type: str = "image/png") -> str:
    images = [{"url": url, "content_type": content_type} for url in urls]
    return json.dumps({"request_id": request_id, "status": "COMPLETED", "images": images})


def check_error(exc: BaseException, expected: type[ra.RadientError], *words: str) -> None:
    """A typed, informative error that does not carry the key."""
    assert isinstance(exc, expected), f"{type(exc).__name__}: {exc}"
    text = str(exc)
    assert len(text) > 10, text
    assert KEY not in text
    assert KEY not in repr(exc)
    for word in words:
        assert word.lower() in text.lower(), text


async def raised(awaitable: Awaitable[Any], within: float = 10) -> BaseException:
    """The exception ``awaitable`` raised (``pytest.fail`` if it succeeded or hung)."""
    try:
        with anyio.fail_after(within):
            value = await awaitable
    except TimeoutError as exc:
        if isinstance(exc, ra.RadientError):
            return exc
        pytest.fail(f"hung for more than {within}s")
    except BaseException as exc:
        return exc
    pytest.fail(f"no error raised; got {value!r}")


def files_in(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file())


# -- broken API answers ----------------------------------------------------------------------------

BROKEN_GENERATE = [
    # (id, body, status, content type, expected error, words its message must contain)
    (
        "html page 200",
        "<html><h1>Welcome</h1></html>",
        200,
        "text/html",
        ra.MalformedResponseError,
        ["expected JSON", "text/html"],
    ),
    (
        "html page 502",
        "<html><h1>502 Bad Gateway</h1></html>",
        502,
        "text/html",
        ra.ServerError,
        ["502"],
    ),
    ("html page 404", "<html>Not Found</html>", 404, "text/html", ra.NotFoundError, ["404"]),
    ("empty body 200", "", 200, "application/json", ra.MalformedResponseError, ["expected JSON"]),
    ("empty body 500", "", 500, "application/json", ra.ServerError, ["500"]),
    ("empty body 401", "", 401, "application/json", ra.AuthenticationError, ["401"]),
    (
        "invalid json",
        '{"request_id": "r", ',
        200,
        "application/json",
        ra.MalformedResponseError,
        ["expected JSON"],
    ),
    ("not utf-8", b"\xff\xfe\xfa\x00{", 200, "application/json", ra.MalformedResponseError, []),
    (
        "json array",
        '[{"request_id": "r", "status": "COMPLETED"}]',
        200,
        "application/json",
        ra.MalformedResponseError,
        ["object"],
    ),
    ("json string", '"COMPLETED"', 200, "application/json", ra.MalformedResponseError, ["object"]),
    ("json null", "null", 200, "application/json", ra.MalformedResponseError, []),
    (
        "missing request_id",
        '{"status": "PROCESSING"}',
        200,
        "application/json",
        ra.MalformedResponseError,
        ["request_id"],
    ),
    (
        "missing status",
        '{"request_id": "r"}',
        200,
        "application/json",
        ra.MalformedResponseError,
        ["status"],
    ),
    (
        "numeric request_id",
        '{"request_id": 12, "status": "PROCESSING"}',
        200,
        "application/json",
        ra.MalformedResponseError,
        ["request_id"],
    ),
    (
        "list status",
        '{"request_id": "r", "status": ["COMPLETED"]}',
        200,
        "application/json",
        ra.MalformedResponseError,
        ["status"],
    ),
    (
        "null fields",
        '{"request_id": null, "status": null}',
        200,
        "application/json",
        ra.MalformedResponseError,
        [],
    ),
    (
        "empty request_id",
        '{"request_id": "", "status": "COMPLETED"}',
        200,
        "application/json",
        ra.MalformedResponseError,
        ["request_id"],
    ),
    (
        "images an object",
        '{"request_id": "r", "status": "COMPLETED", "images": {"url": "x"}}',
        200,
        "application/json",
        ra.MalformedResponseError,
        ["images"],
    ),
    (
        "image without url",
        '{"request_id": "r", "status": "COMPLETED", "images": [{}]}',
        200,
        "application/json",
        ra.MalformedResponseError,
        ["url"],
    ),
    (
        "image url null",
        '{"request_id": "r", "status": "COMPLETED", "images": [{"url": null}]}',
        200,
        "application/json",
        ra.MalformedResponseError,
        ["url"],
    ),
    (
        "image a string",
        '{"request_id": "r", "status": "COMPLETED", "images": ["http://x/a.png"]}',
        200,
        "application/json",
        ra.MalformedResponseError,
        ["images"],
    ),
    (
        "width a string",
        '{"request_id": "r", "status": "COMPLETED", "images": [{"url": "u", "width": "32"}]}',
        200,
        "application/json",
        ra.MalformedResponseError,
        ["width"],
    ),
    (
        "seed a float",
        '{"request_id": "r", "status": "COMPLETED", "seed": 1.5}',
        200,
        "application/json",
        ra.MalformedResponseError,
        ["seed"],
    ),
    ("304 not modified", "", 304, "application/json", ra.MalformedResponseError, ["304"]),
    (
        "error without json",
        "upstream exploded",
        503,
        "text/plain",
        ra.ServerError,
        ["503", "upstream exploded"],
    ),
    (
        "error object",
        '{"error": {"message": "quota exhausted", "code": "quota"}}',
        403,
        "application/json",
        ra.PermissionDeniedError,
        ["quota exhausted"],
    ),
    (
        "unusual 4xx",
        '{"error": "teapot"}',
        418,
        "application/json",
        ra.BadRequestError,
        ["418", "teapot"],
    ),
]


@pytest.mark.parametrize(
    ("body", "status", "content_type", "expected", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in BROKEN_GENERATE],
)
async def test_broken_generate_answers_are_typed_errors(
    hostile: Any,
    body: str | bytes,
    status: int,
    content_type: str,
    expected: type[ra.RadientError],
    words: list[str],
) -> None:
    server = await hostile({"POST /v1/images/generate": reply(body, status, content_type)})
    async with session_for(server.base_url) as session:
        exc = await raised(session.submit("hostile"))
    check_error(exc, expected, *words)
    if isinstance(exc, ra.APIError):
        assert exc.status == status


async def test_a_status_poll_answering_another_job_is_refused(hostile: Any) -> None:
    mine = '{"request_id": "mine", "status": "PROCESSING"}'
    other = '{"request_id": "other", "status": "COMPLETED", "images": []}'
    server = await hostile(
        {"POST /v1/images/generate": reply(mine), "GET /v1/images/status": reply(other)}
    )
    async with session_for(server.base_url) as session:
        exc = await raised(await session.submit("x"))
    # never taken as the job's answer: polled again until the deadline, which says why
    check_error(exc, ra.JobTimeout, "mine", "other")
    assert isinstance(exc.__cause__, ra.MalformedResponseError)


async def test_unknown_status_forever_ends_in_a_typed_error_not_a_hang(hostile: Any) -> None:
    job = '{"request_id": "r1", "status": "QUEUED_FOREVER"}'
    server = await hostile(
        {"POST /v1/images/generate": reply(job), "GET /v1/images/status": reply(job)}
    )
    async with session_for(server.base_url) as session:
        started = anyio.current_time()
        exc = await raised(await session.submit("x"))
        assert anyio.current_time() - started < 2
    check_error(exc, ra.UnexpectedStatusError, "QUEUED_FOREVER")
    assert len([s for s in server.seen if s.path.endswith("/status")]) <= POLL.max_unknown


async def test_processing_forever_ends_at_the_job_deadline(hostile: Any) -> None:
    job = '{"request_id": "r1", "status": "PROCESSING"}'
    server = await hostile(
        {"POST /v1/images/generate": reply(job), "GET /v1/images/status": reply(job)}
    )
    async with session_for(server.base_url) as session:
        handle = await session.submit("x", timeout=0.3)
        exc = await raised(handle, within=3)
    check_error(exc, ra.JobTimeout, "r1")


# -- size, time and transport misbehaviour --------------------------------------------------------


@pytest.mark.parametrize("announced", [True, False], ids=["content-length", "chunked"])
async def test_a_huge_response_is_refused_at_the_limit(hostile: Any, announced: bool) -> None:
    body = json.dumps({"providers": ["x" * 1000] * 300}).encode()  # ~300 kB

    async def huge(request: web.Request) -> web.StreamResponse:
        if announced:
            return web.Response(body=body, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(body), 4096):
            await response.write(body[start : start + 4096])
        return response

    server = await hostile({"GET /v1/images/providers": huge})
    async with session_for(server.base_url, limits=ra.Limits(max_response_bytes=20_000)) as session:
        exc = await raised(session.providers())
    check_error(exc, ra.MalformedResponseError, "20000")


async def test_a_compressed_response_is_capped_after_decompression(hostile: Any) -> None:
    body = b'{"providers": ["default"]' + b" " * 5_000_000 + b"}"
    server = await hostile(
        {
            "GET /v1/images/providers": reply(
                gzip.compress(body), headers={"Content-Encoding": "gzip"}
            )
        }
    )
    async with session_for(server.base_url, limits=ra.Limits(max_response_bytes=20_000)) as session:
        exc = await raised(session.providers())
    check_error(exc, ra.MalformedResponseError, "20000")


def trickle(
    times: int, pause: float, *, content_type: str = "application/json", length: int | None = None
) -> Handler:
    """A handler that sends its headers, then one byte every ``pause`` seconds, ``times`` times."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": content_type})
        if length is not None:
            response.content_length = length
        await response.prepare(request)
        for _ in range(times):
            await response.write(b"x" if length is not None else b" ")
            await asyncio.sleep(pause)
        return response

    return handler


async def test_a_stalled_api_answer_is_abandoned_and_retried(hostile: Any) -> None:
    """An API call's attempt gets ``connect + read`` for its whole answer: the first attempt,
    whose answer trickles on for ~25 s, is dropped and a retry gets the answer well inside the
    20 s the call has. Without that bound the one attempt would use the call's whole time."""
    attempts: list[int] = []
    stall = trickle(50, 0.5)

    async def stall_once(request: web.Request) -> web.StreamResponse:
        attempts.append(1)
        if len(attempts) > 1:
            return web.json_response({"providers": ["second-try"]})
        return await stall(request)

    server = await hostile({"GET /v1/images/providers": stall_once})
    timeouts = ra.Timeouts(connect=0.1, read=0.2, request=20)
    async with session_for(server.base_url, timeouts=timeouts) as session:
        providers = await session.providers()
    assert providers == ("second-try",)
    assert len(attempts) == 2


async def test_a_steady_trickle_is_bounded_by_the_request_timeout(hostile: Any) -> None:
    # Always inside the read timeout between bytes: only the call's total can stop it.
    server = await hostile({"GET /v1/images/providers": trickle(200, 0.05)})
    timeouts = ra.Timeouts(read=0.2, request=1)
    async with session_for(server.base_url, timeouts=timeouts) as session:
        started = anyio.current_time()
        exc = await raised(session.providers())
        elapsed = anyio.current_time() - started
    check_error(exc, ra.APITimeoutError)
    assert elapsed < 2, elapsed


async def test_a_trickling_image_is_bounded_by_the_download_timeout(
    hostile: Any, tmp_path: Path
) -> None:
    slow = trickle(200, 0.05, content_type="image/png", length=10_000)
    files = await hostile({"GET /slow.png": slow})
    api = await hostile({"POST /v1/images/generate": reply(completed("r", files.url("/slow.png")))})
    timeouts = ra.Timeouts(read=0.2, request=5, download=1)
    async with session_for(api.base_url, timeouts=timeouts) as session:
        result = await session.generate("x")
        started = anyio.current_time()
        exc = await raised(result.download(tmp_path))
        elapsed = anyio.current_time() - started
    check_error(exc, ra.DownloadError)
    assert elapsed < 2.5, elapsed
    assert files_in(tmp_path) == []


async def test_a_connection_closed_without_an_answer(hostile: Any) -> None:
    async def hang_up(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.abort()
        return web.Response()

    server = await hostile({"GET /v1/images/providers": hang_up})
    async with session_for(server.base_url) as session:
        exc = await raised(session.providers())
    check_error(exc, ra.APIConnectionError, "/images/providers")
    # retried, then given up (aiohttp itself also replays an idempotent GET once when the
    # connection drops, so each SDK attempt may reach the server twice)
    attempts = 1 + FEW_RETRIES.max_retries
    assert attempts <= len(server.seen) <= 2 * attempts


async def test_a_server_that_does_not_speak_http(tmp_path: Path) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02 this is not HTTP\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with session_for(f"http://127.0.0.1:{port}/v1") as session:
            exc = await raised(session.providers())
    finally:
        server.close()
        await server.wait_closed()
    assert isinstance(exc, (ra.MalformedResponseError, ra.APIConnectionError)), repr(exc)
    check_error(exc, type(exc), "/images/providers")


async def test_a_redirect_loop_gives_up(hostile: Any) -> None:
    server = await hostile({"GET /v1/images/providers": redirect("/v1/images/providers")})
    async with session_for(server.base_url) as session:
        exc = await raised(session.providers())
    check_error(exc, ra.APIConnectionError, "redirect")


async def test_a_redirect_without_a_location_is_malformed(hostile: Any) -> None:
    server = await hostile({"GET /v1/images/providers": reply("", status=302)})
    async with session_for(server.base_url) as session:
        exc = await raised(session.providers())
    check_error(exc, ra.MalformedResponseError, "302")


async def test_an_absurd_retry_after_fails_fast(hostile: Any) -> None:
    headers = {"Retry-After": "86400"}
    server = await hostile(
        {"GET /v1/images/providers": reply('{"error": "slow down"}', 429, headers=headers)}
    )
    async with session_for(server.base_url) as session:
        started = anyio.current_time()
        exc = await raised(session.providers())
        assert anyio.current_time() - started < 1
    check_error(exc, ra.RateLimitError, "slow down")
    assert isinstance(exc, ra.RateLimitError)
    assert exc.retry_after == 86400


@pytest.mark.parametrize(
    "value", ["soon", "-5", "nan", "inf", "1e999", "Mon, 99 Foo 2020 99:99:99 GMT", ""]
)
async def test_a_garbage_retry_after_is_ignored(hostile: Any, value: str) -> None:
    headers = {"Retry-After": value, "retry-after-ms": value}
    server = await hostile(
        {"GET /v1/images/providers": reply('{"error": "busy"}', 503, headers=headers)}
    )
    async with session_for(server.base_url) as session:
        exc = await raised(session.providers(), within=3)
    check_error(exc, ra.ServerError, "busy")


# -- JSON the parser cannot take -------------------------------------------------------------------

UNPARSABLE = [
    pytest.param("[" * 100_000 + "]" * 100_000, id="nested 100k deep"),
    pytest.param(
        '{"request_id": "r", "status": "PROCESSING", "seed": ' + "7" * 5000 + "}",
        id="5000-digit integer",
    ),
]


@pytest.mark.parametrize("status", [200, 500])
@pytest.mark.parametrize("body", UNPARSABLE)
async def test_json_the_parser_cannot_take_is_a_typed_error(
    hostile: Any, body: str, status: int
) -> None:
    server = await hostile({"POST /v1/images/generate": reply(body, status)})
    async with session_for(server.base_url) as session:
        exc = await raised(session.submit("x"))
    assert isinstance(exc, ra.MalformedResponseError if status == 200 else ra.ServerError), repr(
        exc
    )


# -- redirects and the key -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirect_to_another_host_does_not_carry_the_key(hostile: Any, status: int) -> None:
    job = '{"request_id": "r", "status": "COMPLETED", "images": [{"url": "http://127.0.0.1:9/a"}]}'
    elsewhere = await hostile(
        {
            "POST /v1/images/generate": reply(job),
            "GET /v1/images/generate": reply(job),
            "GET /v1/images/providers": reply('{"providers": ["elsewhere"]}'),
        },
        host="localhost",
    )
    api = await hostile(
        {
            "POST /v1/images/generate": redirect(elsewhere.url("/v1/images/generate"), status),
            "GET /v1/images/providers": redirect(elsewhere.url("/v1/images/providers"), status),
        }
    )
    async with session_for(api.base_url) as session:
        assert await session.providers() == ("elsewhere",)
        result = await session.generate("x")
    assert result.request_id == "r"
    assert [s.authorization for s in api.seen] == [f"Bearer {KEY}"] * 2
    assert len(elsewhere.seen) == 2
    assert [s.authorization for s in elsewhere.seen] == [None, None]


async def test_a_same_host_other_port_redirect_does_not_carry_the_key(hostile: Any) -> None:
    other = await hostile({"GET /v1/images/providers": reply('{"providers": ["p"]}')})
    api = await hostile({"GET /v1/images/providers": redirect(other.url("/v1/images/providers"))})
    async with session_for(api.base_url) as session:
        assert await session.providers() == ("p",)
    assert [s.authorization for s in other.seen] == [None]


async def test_an_image_redirected_off_the_api_origin_loses_the_key(
    hostile: Any, tmp_path: Path
) -> None:
    cdn = await hostile({"GET /cdn/a.png": reply(PNG, content_type="image/png")}, host="localhost")
    api: Any = None

    async def generate(request: web.Request) -> web.Response:
        return web.Response(
            text=completed("r", api.url("/v1/files/a.png")), content_type="application/json"
        )

    api = await hostile(
        {
            "POST /v1/images/generate": generate,
            "GET /v1/files/a.png": redirect(cdn.url("/cdn/a.png")),
        }
    )
    async with session_for(api.base_url) as session:
        result = await session.generate("x")
        [path] = await result.download(tmp_path)
        assert await result.images[0].read() == PNG
    assert Path(path).read_bytes() == PNG
    file_requests = [s for s in api.seen if s.path == "/v1/files/a.png"]
    assert [s.authorization for s in file_requests] == [f"Bearer {KEY}"] * 2  # own origin: sent
    assert [s.authorization for s in cdn.seen] == [None, None]  # the other host never gets it


REDIRECT_TARGETS = [
    pytest.param("http://127.0.0.1:99999/v1/images/providers", id="port out of range"),
    pytest.param("http://127.0.0.1:http/v1/images/providers", id="port not a number"),
    pytest.param("http://[::1/v1/images/providers", id="broken IPv6 literal"),
]


@pytest.mark.parametrize("location", REDIRECT_TARGETS)
async def test_a_redirect_to_a_malformed_url_is_a_typed_error(hostile: Any, location: str) -> None:
    server = await hostile({"GET /v1/images/providers": redirect(location)})
    async with session_for(server.base_url) as session:
        exc = await raised(session.providers())
    check_error(exc, ra.MalformedResponseError, "redirect")


async def test_a_redirect_to_a_file_url_is_refused(hostile: Any) -> None:
    server = await hostile({"GET /v1/images/providers": redirect("file:///etc/passwd")})
    async with session_for(server.base_url) as session:
        exc = await raised(session.providers())
    check_error(exc, ra.MalformedResponseError, "file:")


# -- hostile images: names, schemes, data: URIs, lengths ------------------------------------------

HOSTILE_URL_TAILS = [
    pytest.param("/files/..%2F..%2Fetc%2Fpasswd", id="encoded dot-dot"),
    pytest.param("/files/../../etc/passwd", id="dot-dot"),
    pytest.param("/files/%2Fetc%2Fshadow", id="absolute"),
    pytest.param("/files/", id="empty last segment"),
    pytest.param("/files/a.png?name=../../x.sh#../../y", id="query and fragment"),
]
HOSTILE_REQUEST_IDS = [
    "../../etc/passwd",
    "/etc/shadow",
    "..",
    "a/../../b\\..\\c",
    "~root",
    "\x00x",
]


@pytest.mark.parametrize("tail", HOSTILE_URL_TAILS)
@pytest.mark.parametrize("request_id", HOSTILE_REQUEST_IDS)
async def test_a_server_cannot_choose_where_files_land(
    hostile: Any, tmp_path: Path, tail: str, request_id: str
) -> None:
    async def serve_png(request: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    files = await hostile({"GET /{tail:.*}": serve_png})
    url = files.url(tail)
    api = await hostile(
        {
            "POST /v1/images/generate": reply(
                completed(request_id, url, url, content_type="text/html")
            )
        }
    )
    target = tmp_path / "out"
    async with session_for(api.base_url) as session:
        result = await session.generate("x", num_images=2)
        paths = await result.download(target)
        single = await result.images[0].download(target, overwrite=True)
    assert single == paths[0]
    saved = files_in(tmp_path)
    assert sorted(map(Path, paths)) == saved  # nothing anywhere else under tmp_path
    for path in saved:
        assert path.parent == target
        assert SAFE_NAME.fullmatch(path.name), path.name
        assert not path.name.startswith("."), path.name
        assert path.read_bytes() == PNG
    assert len(set(paths)) == 2


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "FILE:///etc/passwd",
        "ftp://127.0.0.1/x.png",
        "gopher://127.0.0.1:70/x",
        "/relative/x.png",
        "javascript:alert(1)",
        "",
    ],
)
async def test_non_http_image_urls_are_refused_without_a_request(
    hostile: Any, tmp_path: Path, url: str
) -> None:
    api = await hostile({"POST /v1/images/generate": reply(completed("r", url))})
    async with session_for(api.base_url) as session:
        result = await session.generate("x")
        for attempt in (result.download(tmp_path), result.images[0].read()):
            exc = await raised(attempt)
            check_error(exc, ra.DownloadError)
    assert [s.path for s in api.seen] == ["/v1/images/generate"]
    assert files_in(tmp_path) == []


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("data:image/png;base64,@@@@", ["base64"]),
        ("data:image/png;base64,iVBORw0KGgo", ["base64"]),  # bad padding
        ("data:image/png;base64", ["comma"]),
    ],
)
async def test_broken_data_uri_images_are_download_errors(
    hostile: Any, tmp_path: Path, url: str, words: list[str]
) -> None:
    api = await hostile({"POST /v1/images/generate": reply(completed("r", url))})
    async with session_for(api.base_url) as session:
        result = await session.generate("x")
        check_error(await raised(result.download(tmp_path)), ra.DownloadError, *words)
        check_error(await raised(result.images[0].read()), ra.DownloadError, *words)
    assert files_in(tmp_path) == []


@pytest.mark.parametrize(
    "url",
    [
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "data:,hello",
        "data:text/plain,hi",
    ],
)
async def test_a_data_uri_that_is_not_an_image_is_refused(
    hostile: Any, tmp_path: Path, url: str
) -> None:
    api = await hostile({"POST /v1/images/generate": reply(completed("r", url))})
    async with session_for(api.base_url) as session:
        result = await session.generate("x")
        check_error(await raised(result.download(tmp_path)), ra.DownloadError, "image")
    assert files_in(tmp_path) == []


# A small body is read in one await, for a file or for memory; a large one for a file through the
# chunk loop (so its chunks are written unjoined), into memory in one await: all must catch a cut.
@pytest.mark.parametrize("sent", [len(PNG), 300_000], ids=["small", "large"])
async def test_a_short_image_body_is_an_integrity_error(
    hostile: Any, tmp_path: Path, sent: int
) -> None:
    body = (PNG * (sent // len(PNG) + 1))[:sent]

    async def short(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.content_length = sent * 4
        await response.prepare(request)
        await response.write(body)
        assert request.transport is not None
        request.transport.close()
        return response

    files = await hostile({"GET /a.png": short})
    api = await hostile({"POST /v1/images/generate": reply(completed("r", files.url("/a.png")))})
    async with session_for(api.base_url) as session:
        result = await session.generate("x")
        check_error(await raised(result.download(tmp_path)), ra.IntegrityError, "cut short")
        check_error(await raised(result.images[0].read()), ra.IntegrityError, "cut short")
    assert len(files.seen) == 2 * (1 + FEW_RETRIES.max_retries)  # each retried once
    assert files_in(tmp_path) == []


async def test_an_image_over_the_size_limit_is_refused(hostile: Any, tmp_path: Path) -> None:
    files = await hostile({"GET /a.png": reply(PNG * 100, content_type="image/png")})
    api = await hostile({"POST /v1/images/generate": reply(completed("r", files.url("/a.png")))})
    limits = ra.Limits(max_image_bytes=len(PNG) * 10)
    async with session_for(api.base_url, limits=limits) as session:
        result = await session.generate("x")
        check_error(await raised(result.download(tmp_path)), ra.DownloadError, "limit")
        check_error(await raised(result.images[0].read()), ra.DownloadError)
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("status", [403, 404, 410, 500, 204])
async def test_an_image_error_status_is_a_download_error(
    hostile: Any, tmp_path: Path, status: int
) -> None:
    files = await hostile({"GET /a.png": reply("<html>nope</html>", status, "text/html")})
    api = await hostile({"POST /v1/images/generate": reply(completed("r", files.url("/a.png")))})
    async with session_for(api.base_url) as session:
        result = await session.generate("x")
        check_error(await raised(result.download(tmp_path)), ra.DownloadError, str(status))
    assert files_in(tmp_path) == []


async def test_a_gzip_encoded_image_downloads(hostile: Any, tmp_path: Path) -> None:
    files = await hostile(
        {
            "GET /a.png": reply(
                gzip.compress(PNG), content_type="image/png", headers={"Content-Encoding": "gzip"}
            )
        }
    )
    api = await hostile({"POST /v1/images/generate": reply(completed("r", files.url("/a.png")))})
    async with session_for(api.base_url) as session:
        result = await session.generate("x")
        assert await result.images[0].read() == PNG  # the in-memory read already copes
        [path] = await result.download(tmp_path)
    assert Path(path).read_bytes() == PNG


BAD_IMAGE_HOSTS = [
    pytest.param("http://127.0.0.1:99999/a.png", id="port out of range"),
    pytest.param("http://127.0.0.1:png/a.png", id="port not a number"),
    pytest.param("http://[::1/a.png", id="broken IPv6 literal"),
]


@pytest.mark.parametrize("url", BAD_IMAGE_HOSTS)
async def test_a_malformed_image_url_is_a_download_error(
    hostile: Any, tmp_path: Path, url: str
) -> None:
    api = await hostile({"POST /v1/images/generate": reply(completed("r", url))})
    async with session_for(api.base_url) as session:
        result = await session.generate("x")
        check_error(await raised(result.images[0].read()), ra.DownloadError)
        check_error(await raised(result.download(tmp_path)), ra.DownloadError)


async def test_one_hostile_image_url_cannot_take_a_batch_down(hostile: Any, tmp_path: Path) -> None:
    count = 0

    async def generate(request: web.Request) -> web.Response:
        nonlocal count
        count += 1
        url = "http://127.0.0.1:99999/a.png" if count == 3 else "data:image/png;base64,iVBORw0KGgo="
        return web.Response(text=completed(f"r{count}", url), content_type="application/json")

    api = await hostile({"POST /v1/images/generate": generate})
    outcomes: list[ra.BatchOutcome] = []
    with anyio.fail_after(10):
        async with session_for(api.base_url) as session:
            async for outcome in session.map([f"p{i}" for i in range(6)], download_to=tmp_path):
                outcomes.append(outcome)
    assert len(outcomes) == 6
    assert [isinstance(o.error, ra.DownloadError) for o in outcomes].count(True) == 1


@pytest.mark.parametrize("case", ["redirect to file", "not http"])
async def test_every_download_failure_is_a_download_error(
    hostile: Any, tmp_path: Path, case: str
) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"\x00\x01 definitely not HTTP\r\n\r\n")
        await writer.drain()
        writer.close()

    raw = await asyncio.start_server(garbage, "127.0.0.1", 0)
    raw_url = f"http://127.0.0.1:{raw.sockets[0].getsockname()[1]}/a.png"
    files = await hostile({"GET /a.png": redirect("file:///etc/passwd")})
    url = files.url("/a.png") if case == "redirect to file" else raw_url
    api = await hostile({"POST /v1/images/generate": reply(completed("r", url))})
    try:
        async with session_for(api.base_url) as session:
            result = await session.generate("x")
            check_error(await raised(result.download(tmp_path)), ra.DownloadError)
    finally:
        raw.close()
        await raw.wait_closed()


# -- property: whatever a status poll answers, only RadientErrors come out ------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
STATUSES = st.sampled_from(["PROCESSING", "COMPLETED", "FAILED", "completed", "", "??"]) | st.text(
    max_size=12
)
IMAGE_URLS = st.sampled_from(
    [
        "data:image/png;base64,iVBORw0KGgo=",
        "data:image/png;base64,@@",
        "file:///etc/passwd",
        "ftp://127.0.0.1/a.png",
        "http://127.0.0.1:1/unreachable.png",
        "",
        "relative.png",
    ]
) | st.text(max_size=30)
IMAGES = st.lists(
    st.fixed_dictionaries(
        {"url": IMAGE_URLS},
        optional={"width": JSON, "height": JSON, "content_type": JSON | st.just("image/png")},
    ),
    max_size=3,
)
JOBS = st.fixed_dictionaries(
    {"request_id": st.just("r1") | st.text(max_size=8), "status": STATUSES},
    optional={"images": IMAGES | JSON, "error": JSON, "provider": JSON, "seed": JSON},
)
STATUS_BODIES = st.one_of(
    JOBS.map(lambda job: json.dumps(job).encode()),
    JSON.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=64),
)
HTTP_STATUSES = st.sampled_from([200, 200, 200, 201, 202, 204, 302, 400, 404, 409, 429, 500, 503])


@pytest.fixture
async def scripted(hostile: Any) -> dict[str, Any]:
    """One hostile server for a whole property test; each example scripts what polls get.

    Answers carry ``retry-after-ms: 1`` so that a 429 example does not hold its session's rate gate
    shut for the default second (the body and status are what is under test here).
    """
    script: dict[str, Any] = {"status": 200, "body": b"", "content_type": "application/json"}

    async def status(request: web.Request) -> web.Response:
        return web.Response(
            body=script["body"],
            status=script["status"],
            content_type=script["content_type"],
            headers={"retry-after-ms": "1"},
        )

    job = '{"request_id": "r1", "status": "PROCESSING"}'
    server = await hostile(
        {"POST /v1/images/generate": reply(job), "GET /v1/images/status": status}
    )
    script["base_url"] = server.base_url
    return script


PROPERTY_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@PROPERTY_SETTINGS
@given(
    body=STATUS_BODIES,
    status=HTTP_STATUSES,
    content_type=st.sampled_from(["application/json", "text/html", "application/octet-stream"]),
)
async def test_any_status_answer_yields_a_result_or_a_radient_error(
    scripted: dict[str, Any], tmp_path: Path, body: bytes, status: int, content_type: str
) -> None:
    scripted.update(body=body, status=status, content_type=content_type)
    poll = ra.PollPolicy(
        first_delay=0.001, min_interval=0.001, max_interval=0.005, timeout=0.3, max_unknown=3
    )
    retry = ra.RetryPolicy(max_retries=0)
    timeouts = ra.Timeouts(request=2, download=2)
    with anyio.fail_after(10):
        async with session_for(
            scripted["base_url"], poll=poll, retry=retry, timeouts=timeouts
        ) as session:
            try:
                result = await (await session.submit("property"))
                await result.download(tmp_path / "out", overwrite=True)
            except ra.RadientError as exc:
                assert str(exc)  # noqa: PT017 - a property over every failure the script yields
                assert KEY not in str(exc)  # noqa: PT017
                assert KEY not in repr(exc)  # noqa: PT017
