"""Proof under faults and hostile input: soak, broken servers, bad calls, secrets, cancellation."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp import web

import radient_async as ra
from radient_async.server import FaultConfig, ServerConfig, ThreadedServer

pytestmark = pytest.mark.anyio

KEY = "sk-reliability-0123456789"
TINY = (32, 32)
POLL = ra.PollPolicy(first_delay=0.01, min_interval=0.01, max_interval=0.05, timeout=30)
RETRY = ra.RetryPolicy(initial_backoff=0.005, max_backoff=0.02, max_retries=10)


def session_for(base_url: str, key: str = KEY, **kwargs: Any) -> ra.Session:
    options: dict[str, Any] = {"poll": POLL, "retry": RETRY}
    options.update(kwargs)
    return ra.Session(key, base_url, **options)


def leftovers(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.name.endswith(".part")]


# -- soak under faults -------------------------------------------------------------------------


@pytest.fixture
def radient_server_config() -> ServerConfig:
    faults = FaultConfig(rate=0.2, retry_after=0.01, slow_delay=0.02)
    return ServerConfig(api_key=KEY, latency=0.02, latency_jitter=0.02, faults=faults, seed=9)


async def test_soak_under_a_rate_limit(tmp_path: Path) -> None:
    config = ServerConfig(api_key=KEY, rate_limit=400, seed=3)
    with ThreadedServer(config) as server:
        async with session_for(server.base_url) as session:
            outcomes = [
                o
                async for o in session.map(
                    map(str, range(200)), sync_mode=True, download_to=tmp_path, image_size=TINY
                )
            ]
        assert all(o.ok for o in outcomes)
        assert server.stats.jobs_created == 200
        assert leftovers(tmp_path) == []


# -- hostile and broken servers ------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def hostile() -> AsyncIterator[Callable[[dict[str, Handler]], Awaitable[str]]]:
    """Start tiny purpose-built servers; returns their base URL (ending in /v1)."""
    runners: list[web.AppRunner] = []

    async def start(routes: dict[str, Handler]) -> str:
        app = web.Application()
        for path, handler in routes.items():
            method, _, route = path.partition(" ")
            app.router.add_route(method, route, handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}/v1"

    yield start
    for runner in runners:
        await runner.cleanup()


def answer(body: bytes | str, status: int = 200, ctype: str = "application/json") -> Handler:
    async def handler(request: web.Request) -> web.Response:
        data = body.encode() if isinstance(body, str) else body
        return web.Response(body=data, status=status, content_type=ctype)

    return handler


HOSTILE_BODIES = [
    (
        "html error page",
        "<html><h1>502 Bad Gateway</h1></html>",
        200,
        "text/html",
        ra.MalformedResponseError,
    ),
    ("html 500", "<html>oops</html>", 500, "text/html", ra.ServerError),
    ("empty body", "", 200, "application/json", ra.MalformedResponseError),
    ("invalid json", "{not json", 200, "application/json", ra.MalformedResponseError),
    ("json array", "[1, 2]", 200, "application/json", ra.MalformedResponseError),
    (
        "missing fields",
        '{"status": "PROCESSING"}',
        200,
        "application/json",
        ra.MalformedResponseError,
    ),
    (
        "wrong types",
        '{"request_id": 12, "status": ["x"]}',
        200,
        "application/json",
        ra.MalformedResponseError,
    ),
    (
        "nulls",
        '{"request_id": null, "status": null}',
        200,
        "application/json",
        ra.MalformedResponseError,
    ),
    (
        "bad image list",
        '{"request_id": "r", "status": "COMPLETED", "images": [{"url": null}]}',
        200,
        "application/json",
        ra.MalformedResponseError,
    ),
]


@pytest.mark.parametrize(
    ("case", "body", "status", "ctype", "error"), HOSTILE_BODIES, ids=[c[0] for c in HOSTILE_BODIES]
)
async def test_broken_generate_answers_are_typed_errors(
    hostile: Any, case: str, body: str, status: int, ctype: str, error: type[Exception]
) -> None:
    base = await hostile({"POST /v1/images/generate": answer(body, status, ctype)})
    retry = ra.RetryPolicy(max_retries=1, initial_backoff=0.001)
    async with session_for(base, retry=retry) as session:
        with anyio.fail_after(10), pytest.raises(error) as caught:
            await session.submit("hostile")
    assert str(caught.value)
    assert KEY not in str(caught.value)


async def test_unknown_status_forever_never_hangs(hostile: Any) -> None:
    job = '{"request_id": "r1", "status": "QUEUED_FOREVER"}'
    base = await hostile(
        {"POST /v1/images/generate": answer(job), "GET /v1/images/status": answer(job)}
    )
    async with session_for(base) as session:
        with anyio.fail_after(10), pytest.raises(ra.UnexpectedStatusError):
            await (await session.submit("x"))


async def test_huge_response_is_capped(hostile: Any) -> None:
    big = '{"request_id": "r", "status": "PROCESSING", "pad": "' + "x" * 200_000 + '"}'
    base = await hostile({"GET /v1/images/providers": answer(big)})
    limits = ra.Limits(max_response_bytes=10_000)
    async with session_for(base, limits=limits) as session:
        with pytest.raises(ra.MalformedResponseError, match="exceeds"):
            await session.providers()


async def test_trickling_server_hits_the_read_timeout(hostile: Any) -> None:
    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(100):
            await response.write(b" ")
            await asyncio.sleep(0.3)
        return response

    base = await hostile({"GET /v1/images/providers": trickle})
    timeouts = ra.Timeouts(request=1.0, read=0.2)
    async with session_for(base, timeouts=timeouts) as session:
        started = anyio.current_time()
        with pytest.raises(ra.APITimeoutError):
            await session.providers()
        assert anyio.current_time() - started < 3


async def test_redirect_to_another_host_drops_the_key(hostile: Any) -> None:
    seen: list[str | None] = []

    async def other(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.json_response({"providers": ["elsewhere"]})

    other_base = await hostile({"GET /v1/images/providers": other})
    other_host = other_base.replace("127.0.0.1", "localhost")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"{other_host}/images/providers")

    base = await hostile({"GET /v1/images/providers": redirect})
    async with session_for(base) as session:
        assert await session.providers() == ("elsewhere",)
    assert seen == [None]


@pytest.mark.parametrize("segment", ["..%2F..%2Fetc%2Fpasswd", "", "%2Fetc%2Fshadow"])
async def test_hostile_image_urls_cannot_choose_the_file_name(
    hostile: Any, tmp_path: Path, segment: str
) -> None:
    png = b"\x89PNG\r\n\x1a\n"

    async def file(request: web.Request) -> web.Response:
        return web.Response(body=png, content_type="image/png")

    files_base = await hostile({"GET /files/{tail:.*}": file})
    origin = files_base.removesuffix("/v1")
    job = {
        "request_id": "../../evil",
        "status": "COMPLETED",
        "images": [{"url": f"{origin}/files/{segment}", "content_type": "image/png"}],
    }
    base = await hostile({"POST /v1/images/generate": answer(json.dumps(job))})
    target = tmp_path / "out"
    async with session_for(base) as session:
        result = await session.generate("x")
        [path] = await result.download(target)
    assert Path(path).parent == target
    assert Path(path).name == "evil_0.png"
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["evil_0.png"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "file"),
        ("ftp://example.com/x.png", "ftp"),
        ("data:image/png;base64,@@@", "base64"),
        ("data:image/png;base64", "comma"),
    ],
)
async def test_unsafe_image_urls_are_refused(
    hostile: Any, tmp_path: Path, url: str, message: str
) -> None:
    job = {"request_id": "r", "status": "COMPLETED", "images": [{"url": url}]}
    base = await hostile({"POST /v1/images/generate": answer(json.dumps(job))})
    async with session_for(base) as session:
        result = await session.generate("x")
        with pytest.raises(ra.DownloadError, match=message):
            await result.download(tmp_path)
    assert list(tmp_path.iterdir()) == []


async def test_content_length_mismatch_is_an_integrity_error(hostile: Any, tmp_path: Path) -> None:
    async def short(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.content_length = 1000
        await response.prepare(request)
        await response.write(b"\x89PNG\r\n\x1a\n" + b"x" * 100)
        assert request.transport is not None
        request.transport.close()
        return response

    files = await hostile({"GET /img.png": short})
    job = {
        "request_id": "r",
        "status": "COMPLETED",
        "images": [{"url": files.removesuffix("/v1") + "/img.png"}],
    }
    base = await hostile({"POST /v1/images/generate": answer(json.dumps(job))})
    retry = ra.RetryPolicy(max_retries=1, initial_backoff=0.001)
    async with session_for(base, retry=retry) as session:
        result = await session.generate("x")
        with pytest.raises(ra.IntegrityError):
            await result.download(tmp_path)
    assert list(tmp_path.iterdir()) == []


# -- bad input from the caller: validated before any request -------------------------------------

BAD_CALLS: list[tuple[str, dict[str, Any], str]] = [
    ("empty prompt", {"prompt": ""}, "prompt"),
    ("blank prompt", {"prompt": "   "}, "prompt"),
    ("prompt not a string", {"prompt": 42}, "prompt"),
    ("prompt too long", {"prompt": "x" * 10_001}, "prompt"),
    ("zero images", {"num_images": 0}, "num_images"),
    ("too many images", {"num_images": 9}, "num_images"),
    ("bool images", {"num_images": True}, "num_images"),
    ("string images", {"num_images": "2"}, "num_images"),
    ("unknown size", {"image_size": "gigantic"}, "image_size"),
    ("tiny custom size", {"image_size": (8, 8)}, "image_size.width"),
    ("huge custom size", {"image_size": (512, 10_000)}, "image_size.height"),
    ("size of wrong type", {"image_size": 512}, "image_size"),
    ("strength above 1", {"strength": 1.1, "source": "https://x.example/a.png"}, "strength"),
    ("strength below 0", {"strength": -0.1, "source": "https://x.example/a.png"}, "strength"),
    ("strength NaN", {"strength": float("nan"), "source": "https://x.example/a.png"}, "strength"),
    ("strength without source", {"strength": 0.5}, "strength"),
    ("guidance zero", {"guidance_scale": 0}, "guidance_scale"),
    ("guidance NaN", {"guidance_scale": float("nan")}, "guidance_scale"),
    ("steps zero", {"num_inference_steps": 0}, "num_inference_steps"),
    ("steps too many", {"num_inference_steps": 201}, "num_inference_steps"),
    ("negative seed", {"seed": -1}, "seed"),
    ("empty provider", {"provider": ""}, "provider"),
    ("provider not a string", {"provider": 3}, "provider"),
    ("sync_mode not a bool", {"sync_mode": "yes"}, "sync_mode"),
    ("extra shadows a field", {"extra": {"num_images": 3}}, "extra"),
    ("non-image bytes", {"source": b"plain text"}, "source"),
    ("empty bytes", {"source": b""}, "source"),
    ("missing path", {"source": "/no/such/file.png"}, "source"),
    ("file URL source", {"source": "file:///etc/passwd"}, "source"),
    ("bad data URI", {"source": "data:image/png;base64,@@"}, "source"),
    ("data URI of text", {"source": "data:text/plain;base64,aGk="}, "source"),
    ("source of wrong type", {"source": 12345}, "source"),
    ("negative timeout", {"timeout": -1}, "timeout"),
    ("request object plus fields", {"prompt": ra.GenerationRequest(prompt="p"), "seed": 3}, "seed"),
    ("zero timeout", {"timeout": 0}, "timeout"),
]


@pytest.fixture
def quiet_server() -> Any:
    with ThreadedServer(ServerConfig(api_key=KEY)) as server:
        yield server


@pytest.mark.parametrize(("case", "kwargs", "field"), BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
async def test_bad_calls_raise_validation_errors_and_send_nothing(
    quiet_server: ThreadedServer, case: str, kwargs: dict[str, Any], field: str
) -> None:
    arguments = {"prompt": "fine", **kwargs}
    prompt = arguments.pop("prompt")
    async with session_for(quiet_server.base_url) as session:
        with pytest.raises(ra.ValidationError) as caught:
            await session.submit(prompt, **arguments)
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)
    assert sum(quiet_server.stats.requests.values()) == 0


async def test_bad_files_are_refused_before_sending(
    quiet_server: ThreadedServer, tmp_path: Path
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * (21 * 1024 * 1024))
    async with session_for(quiet_server.base_url) as session:
        for source in (text, big, tmp_path, open(text)):  # noqa: SIM115 - text-mode on purpose
            with pytest.raises(ra.ValidationError) as caught:
                await session.submit("x", source=source)
            assert caught.value.field == "source"
            if hasattr(source, "close"):
                source.close()
        with pytest.raises(ra.ValidationError):
            session.job("")
        with pytest.raises(ra.ValidationError):
            async for _ in session.map(["x"], concurrency=0):
                pass
    assert sum(quiet_server.stats.requests.values()) == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_url": "ftp://api.example.com/v1"},
        {"base_url": "not a url"},
        {"base_url": "http://api.example.com/v1"},
        {"api_key": ""},
        {"api_key": "two\nlines"},
        {"limits": "many"},
    ],
)
def test_bad_session_configuration(kwargs: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RADIENT_API_KEY", raising=False)
    options = {"api_key": KEY, "base_url": "https://api.example.com/v1", **kwargs}
    with pytest.raises(ra.ConfigurationError):
        ra.Session(**options)


@pytest.mark.parametrize(
    ("factory", "kwargs"),
    [
        (ra.Limits, {"jobs": 0}),
        (ra.Limits, {"requests": -1}),
        (ra.Timeouts, {"request": 0}),
        (ra.Timeouts, {"read": -5}),
        (ra.RetryPolicy, {"max_retries": -1}),
        (ra.PollPolicy, {"timeout": 0}),
    ],
)
def test_bad_policy_values(factory: Any, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        factory(**kwargs)


def test_insecure_http_is_allowed_only_explicitly() -> None:
    assert ra.Session(KEY, "http://api.example.com/v1", allow_insecure_http=True)
    assert ra.Session(KEY, "http://127.0.0.1:9/v1")


# -- credential hygiene --------------------------------------------------------------------------


async def test_the_key_never_leaks(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="radient_async")
    texts: list[str] = []
    faults = FaultConfig(rate=0.3, retry_after=0.01, kinds=("429", "500", "503", "reset"))
    config = ServerConfig(api_key=KEY, separate_image_origin=True, faults=faults, seed=4)
    with ThreadedServer(config) as server:
        async with session_for(server.base_url) as session:
            texts.append(repr(session))
            async for outcome in session.map(
                ["a", "b [fail]", "c"], download_to=tmp_path, image_size=TINY
            ):
                texts += [repr(outcome), str(outcome.error), repr(outcome.error)]
                if outcome.result:
                    texts += [repr(outcome.result), *map(repr, outcome.result.images)]
            job = await session.submit("d", image_size=TINY)
            texts.append(repr(job))
            await job
        async with session_for(server.base_url, key="sk-wrong-" + KEY[::-1]) as bad:
            with pytest.raises(ra.AuthenticationError) as caught:
                await bad.providers()
            texts += [str(caught.value), repr(caught.value), caught.value.body]
        assert server.stats.authorized_requests["files"] == 0
    texts += [r.getMessage() for r in caplog.records]
    assert any("->" in t for t in texts), "DEBUG request logs expected"
    assert not [t for t in texts if KEY in t or KEY[::-1] in t]


# -- cancellation and cleanup ---------------------------------------------------------------------


def library_tasks() -> list[asyncio.Task[Any]]:
    current = asyncio.current_task()
    return [t for t in asyncio.all_tasks() if t is not current and not t.done()]


async def test_cancelling_a_batch_of_500_leaves_nothing_behind(tmp_path: Path) -> None:
    config = ServerConfig(api_key=KEY, latency=0.3, latency_jitter=0.2, min_image_bytes=200_000)
    with ThreadedServer(config) as server:
        before = len(library_tasks())
        async with session_for(server.base_url) as session:
            count = 0
            async for _ in session.map(map(str, range(500)), download_to=tmp_path, image_size=TINY):
                count += 1
                if count == 20:
                    break
            with anyio.move_on_after(0.5):  # and a consumer cancelled from outside
                async for _ in session.map(
                    map(str, range(500, 1000)), download_to=tmp_path, image_size=TINY
                ):
                    pass
        with anyio.fail_after(1):  # within one second nothing of the library is left running
            while len(library_tasks()) > before:
                await anyio.sleep(0.01)
    assert leftovers(tmp_path) == []


async def test_leaving_the_session_with_jobs_running_cancels_them(tmp_path: Path) -> None:
    config = ServerConfig(api_key=KEY, latency=30)
    with ThreadedServer(config) as server:
        before = len(library_tasks())
        async with session_for(server.base_url) as session:
            jobs = [await session.submit(f"slow {i}", image_size=TINY) for i in range(50)]
        assert all(job.done() for job in jobs)
        for job in jobs:
            assert isinstance(job.exception(), ra.JobCancelled)
        assert len(library_tasks()) == before


def test_cleanup_under_asyncio_debug_mode(tmp_path: Path) -> None:
    async def scenario() -> None:
        config = ServerConfig(api_key=KEY, latency=0.2)
        with ThreadedServer(config) as server:
            async with session_for(server.base_url) as session:
                job = await session.submit("debug mode", image_size=TINY)
                job.cancel()
                async for _ in session.map(
                    map(str, range(50)), download_to=tmp_path, image_size=TINY
                ):
                    break
                result = await session.generate("finishes", image_size=TINY)
                await result.download(tmp_path)

    asyncio.run(scenario(), debug=True)
    assert leftovers(tmp_path) == []


def test_no_temporary_files_after_a_cancelled_large_download(tmp_path: Path) -> None:
    async def scenario() -> None:
        config = ServerConfig(api_key=KEY, min_image_bytes=8 * 1024 * 1024)
        with ThreadedServer(config) as server:
            async with session_for(server.base_url) as session:
                result = await session.generate("big", sync_mode=True, image_size=TINY)
                with anyio.move_on_after(0.01):
                    await result.download(tmp_path)

    asyncio.run(scenario())
    assert leftovers(tmp_path) == []
    assert [p for p in tmp_path.iterdir() if p.suffix != ".png"] == []
