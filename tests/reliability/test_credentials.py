"""Credential hygiene: the API key goes to the API's origin and nowhere else.

Not into a log record at DEBUG, not into the ``repr`` of anything the SDK hands out or keeps, not
into an exception's text, not to an image host or across a redirect to another host, and never over
plain http to a host that is not loopback unless the caller explicitly allows it.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import traceback
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp import web

import radient_async as ra
from radient_async.server import FaultConfig, ServerConfig, ThreadedServer

pytestmark = pytest.mark.anyio

KEY = "sk-secret-0d7c4e91ab36f258"
WRONG_KEY = "sk-wrong-81f2a7c05e9d3b64"
TINY = (32, 32)
POLL = ra.PollPolicy(first_delay=0.01, min_interval=0.01, max_interval=0.05, timeout=20)
RETRY = ra.RetryPolicy(max_retries=8, initial_backoff=0.002, max_backoff=0.02)


def session_for(base_url: str, key: str = KEY, **options: Any) -> ra.Session:
    settings: dict[str, Any] = {"poll": POLL, "retry": RETRY}
    settings.update(options)
    return ra.Session(key, base_url, **settings)


def reachable(roots: Iterable[object]) -> Iterator[object]:
    """Every SDK object (and exception) reachable from ``roots`` through attributes and containers.

    Foreign objects (aiohttp's, anyio's) are not entered: what matters is what the SDK built.
    """
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (str, bytes, int, float, type(None))):
            continue
        seen.add(id(obj))
        if isinstance(obj, (list, tuple, set, frozenset, collections.deque)):
            stack.extend(obj)
            continue
        if isinstance(obj, Mapping):
            stack.extend(obj.keys())
            stack.extend(obj.values())
            continue
        ours = type(obj).__module__.startswith("radient_async")
        if not ours and not isinstance(obj, BaseException):
            continue
        yield obj
        if isinstance(obj, BaseException):
            stack.extend([obj.__cause__, obj.__context__, *obj.args])
        stack.extend(getattr(obj, "__dict__", {}).values())
        for cls in type(obj).__mro__:
            slots = getattr(cls, "__slots__", ())
            for name in (slots,) if isinstance(slots, str) else slots:
                if hasattr(obj, name):
                    stack.append(getattr(obj, name))


def texts_of(obj: object) -> list[str]:
    """What a user could print of ``obj``: its repr, and for an error its str and body."""
    texts = [repr(obj)]
    if isinstance(obj, BaseException):
        texts += [str(obj), str(getattr(obj, "body", "")), str(getattr(obj, "error", ""))]
    return texts


def leaks(texts: Iterable[str], *secrets: str) -> list[str]:
    """Each text that shows a secret, cut to the 200 characters before its first sighting."""
    found = []
    for text in texts:
        where = min((text.find(s) for s in secrets if s in text), default=-1)
        if where >= 0:
            found.append(text[max(0, where - 200) : where + 10])
    return found


async def test_the_key_never_appears_in_logs_reprs_or_errors(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: ours, aiohttp's, asyncio's
    faults = FaultConfig(rate=0.3, retry_after=0.005, slow_delay=0.01)
    config = ServerConfig(
        api_key=KEY, separate_image_origin=True, latency=0.02, faults=faults, seed=21
    )
    kept: list[object] = []
    errors: list[BaseException] = []
    with ThreadedServer(config) as server:
        async with session_for(server.base_url) as session:
            kept.append(session)
            outcomes = [
                o
                async for o in session.map(
                    ["one", "two [fail]", {"prompt": "three", "num_images": 2}],
                    download_to=tmp_path,
                    image_size=TINY,
                )
            ]
            kept += outcomes
            errors += [o.error for o in outcomes if o.error is not None]
            assert [o.ok for o in sorted(outcomes, key=lambda o: o.index)] == [True, False, True]
            job = await session.submit("four", image_size=TINY, seed=4)
            kept += [job, [update async for update in job.updates()], await job]
            again = session.job(job.request_id)
            kept += [again, await again, await session.providers()]
            for image in (await again).images:
                kept += [image, len(await image.read())]
            for call in (
                lambda: session.job("imgreq_" + "0" * 24),  # unknown: NotFoundError
                lambda: session.submit("x", num_images=0),  # ValidationError
                lambda: session.submit("x", source=b"not an image"),
            ):
                try:
                    target = call()
                    await (target if not isinstance(target, ra.JobHandle) else target.wait())
                except ra.RadientError as exc:
                    errors.append(exc)
            server.controls.set_latency(30)
            slow = await session.submit("left running", image_size=TINY)
            cancelled = await session.submit("cancelled", image_size=TINY)
            cancelled.cancel()
            kept += [slow, cancelled]
        for handle in (slow, cancelled):
            error = handle.exception()
            assert isinstance(error, ra.JobCancelled)
            errors.append(error)
        async with session_for(server.base_url, key=WRONG_KEY) as wrong:
            try:
                await wrong.providers()
            except ra.AuthenticationError as exc:
                errors.append(exc)
        kept.append(wrong)
        files_with_key = server.stats.authorized_requests["files"]
        downloads = server.stats.downloads
    assert {type(e).__name__ for e in errors} >= {
        "JobFailed",
        "NotFoundError",
        "ValidationError",
        "JobCancelled",
        "AuthenticationError",
    }
    objects = list(reachable([*kept, *errors]))
    assert len(objects) > 50  # the walk really went through the SDK's objects
    texts = [text for obj in objects for text in texts_of(obj)]
    formatter = logging.Formatter()
    records = [formatter.format(record) for record in caplog.records]
    assert any("retry" in text for text in records), "expected DEBUG records of retries"
    assert any(" -> " in text for text in records), "expected DEBUG records of requests"
    assert leaks(texts + records, KEY, WRONG_KEY) == []
    # the image host is another origin: it never received the key, yet served every download
    assert downloads > 0
    assert files_with_key == 0


async def test_an_echoed_key_is_redacted_from_error_text(hostile: Any) -> None:
    """A server that repeats the Authorization header back in its error bodies."""

    async def echo_error(request: web.Request) -> web.Response:
        said = request.headers.get("Authorization", "")
        return web.json_response({"error": f"bad credentials: {said}"}, status=401)

    async def echo_html(request: web.Request) -> web.Response:
        said = request.headers.get("Authorization", "")
        return web.Response(
            text=f"<html>you sent {said}</html>", status=502, content_type="text/html"
        )

    async def echo_garbage(request: web.Request) -> web.Response:
        said = request.headers.get("Authorization", "")
        return web.Response(text=f"not json {said}", content_type="application/json")

    server = await hostile(
        {
            "GET /v1/images/providers": echo_error,
            "GET /v1/images/status": echo_html,
            "POST /v1/images/generate": echo_garbage,
        }
    )
    errors: list[BaseException] = []
    async with session_for(server.base_url, retry=ra.RetryPolicy(max_retries=0)) as session:
        for call in (session.providers, lambda: session.submit("x")):
            with pytest.raises(ra.RadientError) as caught:
                await call()
            errors.append(caught.value)
        handle = session.job("r1", timeout=1)  # its polls fail until the deadline
        with anyio.fail_after(10), pytest.raises(ra.RadientError) as caught:
            await handle
        errors.append(caught.value)
        errors.append(caught.value.__cause__)  # type: ignore[arg-type]
    assert [type(e) for e in errors] == [
        ra.AuthenticationError,
        ra.MalformedResponseError,
        ra.JobTimeout,  # its message names the last failed poll's error
        ra.ServerError,
    ]
    texts = [text for e in errors for text in texts_of(e)]
    assert leaks(texts, KEY) == []
    assert all(server.seen[0].authorization == f"Bearer {KEY}" for _ in server.seen)


async def test_an_echoed_key_is_redacted_from_a_failed_job(hostile: Any) -> None:
    async def failed(request: web.Request) -> web.Response:
        said = request.headers.get("Authorization", "")
        job = {"request_id": "r1", "status": "FAILED", "error": f"quota exceeded for {said}"}
        return web.json_response(job)

    server = await hostile({"POST /v1/images/generate": failed, "GET /v1/images/status": failed})
    async with session_for(server.base_url) as session:
        handle = await session.submit("x")
        with pytest.raises(ra.JobFailed) as caught:
            await handle
        texts = [*texts_of(caught.value), repr(handle.last_update)]
    assert "quota exceeded" in str(caught.value)
    assert leaks(texts, KEY) == []


async def test_the_key_goes_only_to_the_api_origin(hostile: Any, tmp_path: Path) -> None:
    """Images on another host, on another port, and behind redirects off the API origin."""
    png = b"\x89PNG\r\n\x1a\n" + b"\1" * 500

    async def serve_png(request: web.Request) -> web.Response:
        return web.Response(body=png, content_type="image/png")

    cdn = await hostile({"GET /{name}": serve_png}, host="localhost")
    other_port = await hostile({"GET /{name}": serve_png})
    api: Any = None
    job = {"request_id": "r", "status": "COMPLETED", "images": []}

    async def generate(request: web.Request) -> web.Response:
        urls = [
            cdn.url("/direct.png"),
            other_port.url("/port.png"),
            api.url("/v1/files/own.png"),  # own origin: the key may go, the redirect may not
        ]
        body = {**job, "images": [{"url": u, "content_type": "image/png"} for u in urls]}
        return web.json_response(body)

    async def own_file(request: web.Request) -> web.Response:
        raise web.HTTPFound(cdn.url("/redirected.png"))

    async def moved(request: web.Request) -> web.Response:
        return web.Response(status=307, headers={"Location": elsewhere.url(request.path)})

    elsewhere = await hostile({"POST /v1/images/generate": generate}, host="localhost")
    api = await hostile({"POST /v1/images/generate": moved, "GET /v1/files/own.png": own_file})
    async with session_for(api.base_url) as session:
        result = await session.generate("x", num_images=3)  # 307: replayed at another origin
        paths = await result.download(tmp_path)
    assert [Path(p).read_bytes() for p in paths] == [png] * 3
    assert {s.authorization for s in api.seen} == {f"Bearer {KEY}"}
    for host in (elsewhere, cdn, other_port):
        assert host.seen, host
        assert {s.authorization for s in host.seen} == {None}, host


INSECURE = [
    "http://api.example.com/v1",
    "http://api.example.com:80/v1",
    "http://10.1.2.3:8080/v1",
    "http://192.168.0.10/v1",
    "http://0.0.0.0:8000/v1",
    "http://localhost.example.com/v1",
    "http://127.0.0.1.nip.io/v1",
    "http://[2001:db8::1]/v1",
]
LOOPBACK = [
    "http://127.0.0.1:9/v1",
    "http://127.8.9.10/v1",
    "http://localhost:9/v1",
    "http://LOCALHOST:9/v1",
    "http://[::1]:9/v1",
]


@pytest.mark.parametrize("base_url", INSECURE)
def test_plain_http_off_loopback_is_refused_unless_allowed(base_url: str) -> None:
    with pytest.raises(ra.ConfigurationError, match="allow_insecure_http") as caught:
        ra.Session(KEY, base_url)
    assert KEY not in str(caught.value)
    assert ra.Session(KEY, base_url, allow_insecure_http=True).base_url == base_url
    assert ra.Session(KEY, base_url.replace("http://", "https://")).base_url


@pytest.mark.parametrize("base_url", LOOPBACK)
def test_plain_http_to_loopback_is_allowed(base_url: str) -> None:
    assert ra.Session(KEY, base_url).base_url == base_url


def test_configuration_errors_never_echo_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RADIENT_API_KEY", KEY)
    errors: list[BaseException] = []
    for options in (
        {"base_url": "ftp://example.com/v1"},
        {"base_url": f"https://user:{KEY}@example.com/v1"},
        {"base_url": f"https://example.com/v1?key={KEY}"},
        {"api_key": KEY + "\n"},
        {"base_url": "http://example.com/v1"},
    ):
        with pytest.raises(ra.ConfigurationError) as caught:
            ra.Session(**options)  # type: ignore[arg-type]
        errors.append(caught.value)
    texts = [text for e in errors for text in texts_of(e)]
    assert leaks(texts, KEY) == []
    assert KEY not in repr(ra.Session())
    assert json.dumps(texts)  # plain text throughout


def chain_and_locals(error: BaseException) -> list[str]:
    """What a crash report could show of ``error``: every linked error, and the locals of every
    SDK frame its traceback passed through (the test's own frames hold the key by design)."""
    texts = [text for obj in reachable([error]) for text in texts_of(obj)]
    for linked in reachable([error]):
        if not isinstance(linked, BaseException):
            continue
        for frame, _ in traceback.walk_tb(linked.__traceback__):
            if "radient_async" in frame.f_code.co_filename:
                texts += [f"{name} = {value!r}" for name, value in frame.f_locals.items()]
    return texts


async def test_a_garbage_status_line_does_not_leak_the_key_through_the_chain() -> None:
    """aiohttp's parser error keeps the request it was answering; its repr must not show the key."""

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 2OO NOT A STATUS\r\nX: y\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with session_for(
            f"http://127.0.0.1:{port}/v1", retry=ra.RetryPolicy(max_retries=0)
        ) as session:
            with pytest.raises(ra.RadientError) as caught:
                await session.providers()
    finally:
        server.close()
        await server.wait_closed()
    assert leaks(chain_and_locals(caught.value), KEY) == []


async def test_a_key_echoed_anywhere_in_a_job_is_redacted(hostile: Any, caplog: Any) -> None:
    """Status, ids, image URLs, codes and fields that repeat the key back are all redacted."""
    caplog.set_level(logging.DEBUG, logger="radient_async")

    def said(request: web.Request) -> str:
        return request.headers.get("Authorization", "").removeprefix("Bearer ")

    async def submit(request: web.Request) -> web.Response:
        return web.json_response({"request_id": "r1", "status": "PROCESSING"})

    async def status(request: web.Request) -> web.Response:
        key = said(request)
        kind = request.query.get("request_id")
        if kind == "r1":  # the wrong job's answer
            return web.json_response({"request_id": f"r-{key}", "status": "PROCESSING"})
        if kind == "r2":  # a status nobody knows
            return web.json_response({"request_id": "r2", "status": f"WEIRD-{key}"})
        if kind == "r3":  # an image URL that cannot be fetched
            url = f"http://127.0.0.1:9/{key}.png"
            return web.json_response(
                {"request_id": "r3", "status": "COMPLETED", "images": [{"url": url}]}
            )
        body = {"error": f"no {key}", "code": f"bad_{key}", "field": key}
        return web.json_response(body, status=400)

    server = await hostile({"POST /v1/images/generate": submit, "GET /v1/images/status": status})
    errors: list[BaseException] = []
    updates: list[object] = []
    async with session_for(server.base_url, retry=ra.RetryPolicy(max_retries=0)) as session:
        for request_id in ("r1", "r2", "r3", "r4"):
            handle = session.job(request_id, timeout=2)
            try:
                result = await handle
                updates.append(result)
                await result.images[0].read()
            except ra.RadientError as exc:
                errors.append(exc)
            updates.append(handle.last_update)
    assert len(errors) == 4
    texts = [text for error in errors for text in chain_and_locals(error)]
    texts += [repr(update) for update in updates]
    texts += [logging.Formatter().format(record) for record in caplog.records]
    assert leaks(texts, KEY) == []
