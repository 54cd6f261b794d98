"""Bad input from the caller: refused before anything is sent, with the culprit named.

Every bad call raises ``ValidationError`` (a ``ValueError``) naming the field, and every bad setting
raises ``ConfigurationError`` (a ``ValueError``); the local server's counters prove that not one
request left the client.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import radient_async as ra
from radient_async.server import ServerConfig, ThreadedServer

pytestmark = pytest.mark.anyio

KEY = "sk-badinput-5e8a1c7d2b904f36"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
URL_SOURCE = "https://images.example.com/a.png"


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedServer]:
    with ThreadedServer(ServerConfig(api_key=KEY)) as running:
        yield running


@pytest.fixture
def quiet(server: ThreadedServer) -> Iterator[ThreadedServer]:
    """The shared server with zeroed counters; the test fails if any request reached it."""
    server.controls.reset_stats()
    yield server
    assert sum(server.stats.requests.values()) == 0, dict(server.stats.requests)


def files(tmp: Path) -> dict[str, Any]:
    """Bad file sources, made on disk for one test."""
    text = tmp / "notes.txt"
    text.write_text("not an image at all")
    fake = tmp / "fake.png"  # an image name, text inside: the bytes decide, not the name
    fake.write_text("hello")
    big = tmp / "big.png"
    with open(big, "wb") as handle:  # sparse: 21 MiB announced, nothing written
        handle.write(PNG)
        handle.truncate(21 * 1024 * 1024)
    empty = tmp / "empty.png"
    empty.write_bytes(b"")
    return {
        "text file": text,
        "image name, text inside": fake,
        "21 MiB file": big,
        "empty file": empty,
        "missing path": tmp / "missing.png",
        "missing path as str": str(tmp / "missing.png"),
        "directory": tmp,
        "text-mode file object": open(text),
        "empty stream": io.BytesIO(b""),
        "non-image stream": io.BytesIO(b"GIF88a not quite"),
    }


# (case, keyword arguments of submit, the field the error must name)
BAD_CALLS: list[tuple[str, dict[str, Any], str]] = [
    ("empty prompt", {"prompt": ""}, "prompt"),
    ("whitespace prompt", {"prompt": " \t\n "}, "prompt"),
    ("None prompt", {"prompt": None}, "prompt"),
    ("int prompt", {"prompt": 42}, "prompt"),
    ("bytes prompt", {"prompt": b"a fox"}, "prompt"),
    ("list prompt", {"prompt": ["a", "fox"]}, "prompt"),
    ("prompt over 10,000 chars", {"prompt": "x" * 10_001}, "prompt"),
    ("zero images", {"num_images": 0}, "num_images"),
    ("nine images", {"num_images": 9}, "num_images"),
    ("negative images", {"num_images": -1}, "num_images"),
    ("True images", {"num_images": True}, "num_images"),
    ("str images", {"num_images": "2"}, "num_images"),
    ("float images", {"num_images": 2.0}, "num_images"),
    ("unknown size name", {"image_size": "gigantic"}, "image_size"),
    ("size name in capitals", {"image_size": "SQUARE"}, "image_size"),
    ("size an int", {"image_size": 512}, "image_size"),
    ("size a 3-tuple", {"image_size": (32, 32, 3)}, "image_size"),
    ("size dict missing height", {"image_size": {"width": 32}}, "image_size"),
    ("size width below 16", {"image_size": (8, 64)}, "image_size.width"),
    ("size height above 4096", {"image_size": (64, 4097)}, "image_size.height"),
    ("size negative", {"image_size": (-32, 32)}, "image_size.width"),
    ("size floats", {"image_size": (32.5, 32)}, "image_size.width"),
    ("size strings", {"image_size": {"width": "32", "height": "32"}}, "image_size.width"),
    ("strength -0.1", {"strength": -0.1, "source": URL_SOURCE}, "strength"),
    ("strength 1.1", {"strength": 1.1, "source": URL_SOURCE}, "strength"),
    ("strength NaN", {"strength": math.nan, "source": URL_SOURCE}, "strength"),
    ("strength a str", {"strength": "0.5", "source": URL_SOURCE}, "strength"),
    ("strength without a source", {"strength": 0.5}, "strength"),
    ("guidance 0", {"guidance_scale": 0}, "guidance_scale"),
    ("guidance negative", {"guidance_scale": -1.0}, "guidance_scale"),
    ("guidance NaN", {"guidance_scale": math.nan}, "guidance_scale"),
    ("guidance infinite", {"guidance_scale": math.inf}, "guidance_scale"),
    ("guidance above 50", {"guidance_scale": 50.5}, "guidance_scale"),
    ("steps 0", {"num_inference_steps": 0}, "num_inference_steps"),
    ("steps 201", {"num_inference_steps": 201}, "num_inference_steps"),
    ("steps a float", {"num_inference_steps": 20.0}, "num_inference_steps"),
    ("seed -1", {"seed": -1}, "seed"),
    ("seed 2**63", {"seed": 2**63}, "seed"),
    ("seed True", {"seed": True}, "seed"),
    ("seed a str", {"seed": "7"}, "seed"),
    ("provider an int", {"provider": 3}, "provider"),
    ("provider empty", {"provider": ""}, "provider"),
    ("provider whitespace", {"provider": "  "}, "provider"),
    ("provider a list", {"provider": ["default"]}, "provider"),
    ("sync_mode a str", {"sync_mode": "yes"}, "sync_mode"),
    ("sync_mode 1", {"sync_mode": 1}, "sync_mode"),
    ("extra shadows prompt", {"extra": {"prompt": "other"}}, "extra"),
    ("extra shadows seed", {"extra": {"seed": 1}}, "extra"),
    ("extra shadows source_url", {"extra": {"source_url": URL_SOURCE}}, "extra"),
    ("source file URL", {"source": "file:///etc/passwd"}, "source"),
    ("source ftp URL", {"source": "ftp://example.com/a.png"}, "source"),
    ("source URL with credentials", {"source": "https://u:p@example.com/a.png"}, "source"),
    ("source URL without host", {"source": "https:///a.png"}, "source"),
    ("source URL with spaces", {"source": "https://example.com/a b.png"}, "source"),
    ("source data URI bad base64", {"source": "data:image/png;base64,@@@"}, "source"),
    ("source data URI not base64", {"source": "data:image/png,rawbytes"}, "source"),
    ("source data URI no comma", {"source": "data:image/png;base64"}, "source"),
    ("source data URI of text", {"source": "data:text/plain;base64,aGVsbG8="}, "source"),
    (
        "source data URI lies about type",
        {"source": "data:image/jpeg;base64,iVBORw0KGgoAAAAA"},
        "source",
    ),
    ("source bytes not an image", {"source": b"plain text"}, "source"),
    ("source empty bytes", {"source": b""}, "source"),
    ("source an int", {"source": 12345}, "source"),
    ("source a dict", {"source": {"url": URL_SOURCE}}, "source"),
    ("timeout -1", {"timeout": -1}, "timeout"),
    ("timeout 0", {"timeout": 0}, "timeout"),
    ("timeout NaN", {"timeout": math.nan}, "timeout"),
    ("timeout a str", {"timeout": "10"}, "timeout"),
    ("timeout True", {"timeout": True}, "timeout"),
    ("request plus a field", {"prompt": ra.GenerationRequest(prompt="p"), "seed": 3}, "seed"),
    (
        "request plus a source",
        {"prompt": ra.GenerationRequest(prompt="p"), "source": PNG},
        "source",
    ),
]


@pytest.mark.parametrize(
    ("arguments", "field"), [pytest.param(c[1], c[2], id=c[0]) for c in BAD_CALLS]
)
async def test_bad_calls_are_refused_before_sending(
    quiet: ThreadedServer, arguments: dict[str, Any], field: str
) -> None:
    arguments = dict(arguments)
    prompt = arguments.pop("prompt", "a fine prompt")
    async with ra.Session(KEY, quiet.base_url) as session:
        for call in (session.submit, session.generate):
            with pytest.raises(ra.ValidationError) as caught:
                await call(prompt, **arguments)
            assert caught.value.field == field
            assert isinstance(caught.value, ValueError)
            assert str(caught.value).startswith(f"{field}: ")
            assert len(str(caught.value)) > len(field) + 8


@pytest.mark.parametrize(
    "case",
    [
        "text file",
        "image name, text inside",
        "21 MiB file",
        "empty file",
        "missing path",
        "missing path as str",
        "directory",
        "text-mode file object",
        "empty stream",
        "non-image stream",
    ],
)
async def test_bad_files_are_refused_before_sending(
    quiet: ThreadedServer, tmp_path: Path, case: str
) -> None:
    sources = files(tmp_path)
    source = sources[case]
    try:
        async with ra.Session(KEY, quiet.base_url) as session:
            with pytest.raises(ra.ValidationError) as caught:
                await session.submit("x", source=source)
    finally:
        for value in sources.values():
            if hasattr(value, "close"):
                value.close()
    assert caught.value.field == "source"
    if "missing" in case:
        assert "missing.png" in str(caught.value)


async def test_bad_handle_and_batch_calls_are_refused_before_sending(
    quiet: ThreadedServer, tmp_path: Path
) -> None:
    async with ra.Session(KEY, quiet.base_url) as session:
        for request_id in ("", "   ", None, 42):
            with pytest.raises(ra.ValidationError) as caught:
                session.job(request_id)  # type: ignore[arg-type]
            assert caught.value.field == "request_id"
        for concurrency in (0, -1, True, 1.5, "4"):
            with pytest.raises(ra.ValidationError) as caught:
                async for _ in session.map(["x"], concurrency=concurrency):  # type: ignore[arg-type]
                    pass
            assert caught.value.field == "concurrency"
        # bad items and defaults fail their own item, not the batch, and send nothing
        outcomes = [
            o
            async for o in session.map(
                ["", 42, {"prompt": "x", "num_images": 0}, {"prompt": "x", "source": PNG}],
                download_to=tmp_path,
            )
        ]
        assert sorted(o.index for o in outcomes) == [0, 1, 2, 3]
        fields = {o.index: getattr(o.error, "field", None) for o in outcomes}
        assert fields == {0: "prompt", 1: "items", 2: "num_images", 3: "source"}
        assert all(isinstance(o.error, ra.ValidationError) for o in outcomes)
        bad_default = [o async for o in session.map(["x", "y"], num_images=9)]
        assert {getattr(o.error, "field", None) for o in bad_default} == {"num_images"}
    assert list(tmp_path.iterdir()) == []


async def test_a_session_not_entered_sends_nothing(quiet: ThreadedServer) -> None:
    session = ra.Session(KEY, quiet.base_url)
    with pytest.raises(ra.SessionClosedError):
        await session.submit("x")
    with pytest.raises(ra.SessionClosedError):
        await session.providers()
    with pytest.raises(ra.SessionClosedError):
        session.job("imgreq_x")
    async with session:
        pass
    with pytest.raises(ra.SessionClosedError):
        await session.generate("x")
    with pytest.raises(ra.SessionClosedError):
        async with session:
            pass


# -- session configuration ------------------------------------------------------------------------

BAD_SESSIONS: list[tuple[str, Callable[[str], dict[str, Any]]]] = [
    ("ftp base URL", lambda base: {"base_url": base.replace("http://", "ftp://")}),
    ("no scheme", lambda base: {"base_url": base.removeprefix("http://")}),
    ("not a URL", lambda base: {"base_url": "not a url"}),
    ("empty base URL", lambda base: {"base_url": "  "}),
    ("base URL not a str", lambda base: {"base_url": 8080}),
    ("base URL with a query", lambda base: {"base_url": base + "?debug=1"}),
    ("base URL with a fragment", lambda base: {"base_url": base + "#top"}),
    ("base URL with credentials", lambda base: {"base_url": base.replace("//", "//u:p@")}),
    ("http to a remote host", lambda base: {"base_url": "http://api.example.com/v1"}),
    ("http to a private address", lambda base: {"base_url": "http://10.0.0.8/v1"}),
    ("empty key", lambda base: {"api_key": ""}),
    ("blank key", lambda base: {"api_key": "   "}),
    ("two-line key", lambda base: {"api_key": KEY + "\nX-Evil: 1"}),
    ("key not a str", lambda base: {"api_key": 1234567}),
    ("timeouts a dict", lambda base: {"timeouts": {"request": 1}}),
    ("retry a number", lambda base: {"retry": 3}),
    ("poll a str", lambda base: {"poll": "fast"}),
    ("limits a str", lambda base: {"limits": "many"}),
]


@pytest.mark.parametrize("change", [pytest.param(c[1], id=c[0]) for c in BAD_SESSIONS])
def test_bad_session_settings_are_configuration_errors(
    quiet: ThreadedServer, change: Callable[[str], dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RADIENT_API_KEY", raising=False)
    monkeypatch.delenv("RADIENT_BASE_URL", raising=False)
    options = {"api_key": KEY, "base_url": quiet.base_url, **change(quiet.base_url)}
    with pytest.raises(ra.ConfigurationError) as caught:
        ra.Session(**options)
    assert KEY not in str(caught.value)


def test_no_key_anywhere_is_a_configuration_error(
    quiet: ThreadedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RADIENT_API_KEY", raising=False)
    with pytest.raises(ra.ConfigurationError, match="RADIENT_API_KEY"):
        ra.Session(base_url=quiet.base_url)


@pytest.mark.parametrize(
    "base_url", ["http://127.0.0.1:99999/v1", "http://127.0.0.1:port/v1", "http://[::1/v1"]
)
def test_a_base_url_with_a_broken_authority_is_a_configuration_error(base_url: str) -> None:
    with pytest.raises(ra.ConfigurationError):
        ra.Session(KEY, base_url)


@pytest.mark.parametrize("flag", ["false", "0", 1])
def test_allow_insecure_http_must_be_a_bool(flag: object) -> None:
    with pytest.raises(ra.ConfigurationError):
        ra.Session(KEY, "http://api.example.com/v1", allow_insecure_http=flag)  # type: ignore[arg-type]


# -- policy values --------------------------------------------------------------------------------

BAD_POLICIES: list[tuple[str, Callable[[], object]]] = [
    ("Limits jobs 0", lambda: ra.Limits(jobs=0)),
    ("Limits requests -1", lambda: ra.Limits(requests=-1)),
    ("Limits downloads True", lambda: ra.Limits(downloads=True)),
    ("Limits max_response_bytes 0", lambda: ra.Limits(max_response_bytes=0)),
    ("Limits max_image_bytes 1.5", lambda: ra.Limits(max_image_bytes=1.5)),  # type: ignore[arg-type]
    ("Timeouts request 0", lambda: ra.Timeouts(request=0)),
    ("Timeouts request -1", lambda: ra.Timeouts(request=-1)),
    ("Timeouts read NaN", lambda: ra.Timeouts(read=math.nan)),
    ("Timeouts connect a str", lambda: ra.Timeouts(connect="10")),  # type: ignore[arg-type]
    ("Timeouts download True", lambda: ra.Timeouts(download=True)),
    ("RetryPolicy max_retries -1", lambda: ra.RetryPolicy(max_retries=-1)),
    ("RetryPolicy max_retries 1.5", lambda: ra.RetryPolicy(max_retries=1.5)),  # type: ignore[arg-type]
    ("RetryPolicy initial_backoff -1", lambda: ra.RetryPolicy(initial_backoff=-1)),
    ("RetryPolicy max_backoff NaN", lambda: ra.RetryPolicy(max_backoff=math.nan)),
    ("RetryPolicy max_retry_after a str", lambda: ra.RetryPolicy(max_retry_after="60")),  # type: ignore[arg-type]
    ("PollPolicy timeout 0", lambda: ra.PollPolicy(timeout=0)),
    ("PollPolicy first_delay -1", lambda: ra.PollPolicy(first_delay=-1)),
    ("PollPolicy min above max", lambda: ra.PollPolicy(min_interval=2, max_interval=1)),
    ("PollPolicy growth 1", lambda: ra.PollPolicy(growth=1)),
    ("PollPolicy jitter -0.1", lambda: ra.PollPolicy(jitter=-0.1)),
    ("PollPolicy max_unknown 0", lambda: ra.PollPolicy(max_unknown=0)),
]


@pytest.mark.parametrize("build", [pytest.param(c[1], id=c[0]) for c in BAD_POLICIES])
def test_bad_policy_values_are_value_errors(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError) as caught:
        build()
    assert len(str(caught.value)) > 10


@pytest.mark.parametrize("build", [pytest.param(c[1], id=c[0]) for c in BAD_POLICIES[::5]])
def test_bad_policy_values_are_configuration_errors(build: Callable[[], object]) -> None:
    with pytest.raises(ra.ConfigurationError):
        build()
