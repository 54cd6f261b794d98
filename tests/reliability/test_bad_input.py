"""Bad input from the caller: refused before anything is sent, with the culprit named.

Every bad call raises ``ValidationError`` (a ``ValueError``) naming the field, and every bad setting
raises ``ConfigurationError`` (a ``ValueError``) naming the setting; the local server's counters
prove that not one request left the client. The tables cover every public constructor and method
argument with wrong types (str for numbers, bool for ints, None, bytes, objects) and wrong values
(NaN, infinities, negatives, zero where invalid, integers beyond any float).

Rows marked ``xfail(strict=True, reason="BUG: ...")`` are known gaps whose fix lies in a module
this test's author does not own; each reason names the fix. A strict xfail turns into a failure
the day the gap is closed, so the mark must then be removed.
"""

from __future__ import annotations

import decimal
import io
import math
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

import radient_async as ra
from radient_async.server import ServerConfig, ThreadedServer


def attrs_names(cls: type[Any]) -> list[str]:
    return [field.name for field in attrs.fields(cls)]


pytestmark = pytest.mark.anyio

KEY = "sk-badinput-5e8a1c7d2b904f36"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
URL_SOURCE = "https://images.example.com/a.png"
HUGE = 10**400  # an int no float can hold: float(HUGE) raises OverflowError


def bug(reason: str) -> pytest.MarkDecorator:
    """A known gap: the row must fail today (strict), and ``reason`` says where it is fixed."""
    return pytest.mark.xfail(strict=True, reason=f"BUG: {reason}")


def rows(table: list[tuple[Any, ...]], known: dict[str, pytest.MarkDecorator]) -> list[Any]:
    """``pytest.param`` rows of a table, ``id`` from its first column, marks from ``known``."""
    assert set(known) <= {row[0] for row in table}, set(known) - {row[0] for row in table}
    return [
        pytest.param(*row[1:], id=row[0], marks=[known[row[0]]] if row[0] in known else [])
        for row in table
    ]


def assert_nothing_sent(server: ThreadedServer) -> None:
    """Checked inside the test, not at teardown: an xfail row's stray request is its failure."""
    assert sum(server.stats.requests.values()) == 0, dict(server.stats.requests)


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


def _deep(levels: int) -> object:
    value: object = "bottom"
    for _ in range(levels):
        value = [value]
    return value


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
    ("object prompt", {"prompt": object()}, "prompt"),
    ("None images", {"num_images": None}, "num_images"),
    ("NaN images", {"num_images": math.nan}, "num_images"),
    ("huge images", {"num_images": HUGE}, "num_images"),
    ("bytes images", {"num_images": b"1"}, "num_images"),
    ("size bytes", {"image_size": b"square"}, "image_size"),
    ("size True", {"image_size": True}, "image_size"),
    ("size a list", {"image_size": [64, 64]}, "image_size"),
    ("size bool width", {"image_size": (True, 64)}, "image_size.width"),
    ("size huge width", {"image_size": (HUGE, 64)}, "image_size.width"),
    ("size NaN height", {"image_size": (64, math.nan)}, "image_size.height"),
    ("size zero height", {"image_size": (64, 0)}, "image_size.height"),
    ("size None width", {"image_size": {"width": None, "height": 64}}, "image_size.width"),
    ("strength infinite", {"strength": math.inf, "source": URL_SOURCE}, "strength"),
    ("strength huge", {"strength": HUGE, "source": URL_SOURCE}, "strength"),
    ("strength True", {"strength": True, "source": URL_SOURCE}, "strength"),
    ("strength bytes", {"strength": b"0.5", "source": URL_SOURCE}, "strength"),
    ("guidance True", {"guidance_scale": True}, "guidance_scale"),
    ("guidance a str", {"guidance_scale": "7.5"}, "guidance_scale"),
    ("guidance huge", {"guidance_scale": HUGE}, "guidance_scale"),
    ("guidance -inf", {"guidance_scale": -math.inf}, "guidance_scale"),
    ("guidance a Decimal", {"guidance_scale": decimal.Decimal("7.5")}, "guidance_scale"),
    ("steps True", {"num_inference_steps": True}, "num_inference_steps"),
    ("steps a str", {"num_inference_steps": "20"}, "num_inference_steps"),
    ("steps negative", {"num_inference_steps": -5}, "num_inference_steps"),
    ("steps huge", {"num_inference_steps": HUGE}, "num_inference_steps"),
    ("steps NaN", {"num_inference_steps": math.nan}, "num_inference_steps"),
    ("seed huge", {"seed": HUGE}, "seed"),
    ("seed a float", {"seed": 7.0}, "seed"),
    ("seed NaN", {"seed": math.nan}, "seed"),
    ("seed bytes", {"seed": b"7"}, "seed"),
    ("provider bytes", {"provider": b"default"}, "provider"),
    ("provider True", {"provider": True}, "provider"),
    ("sync_mode None", {"sync_mode": None}, "sync_mode"),
    ("sync_mode 'false'", {"sync_mode": "false"}, "sync_mode"),
    ("sync_mode 0", {"sync_mode": 0}, "sync_mode"),
    ("extra not a mapping", {"extra": [("steps", 3)]}, "extra"),
    ("extra a str", {"extra": "steps=3"}, "extra"),
    ("extra bytes value", {"extra": {"blob": b"\x00\x01"}}, "extra"),
    ("extra object value", {"extra": {"thing": object()}}, "extra"),
    ("extra NaN value", {"extra": {"eta": math.nan}}, "extra"),
    ("extra infinite value", {"extra": {"eta": math.inf}}, "extra"),
    ("extra set value", {"extra": {"tags": {"a", "b"}}}, "extra"),
    ("extra int key", {"extra": {1: "x"}}, "extra"),
    ("extra nested bad value", {"extra": {"outer": {"inner": [1, b"x"]}}}, "extra"),
    ("extra nested too deep", {"extra": {"deep": _deep(40)}}, "extra"),
    ("extra Decimal value", {"extra": {"eta": decimal.Decimal("0.5")}}, "extra"),
    ("source True", {"source": True}, "source"),
    ("source a float", {"source": 1.5}, "source"),
    ("source path with NUL", {"source": "photo\0.png"}, "source"),
    ("source an object", {"source": object()}, "source"),
    ("source blank", {"source": "   "}, "source"),
    ("timeout infinite", {"timeout": math.inf}, "timeout"),
    ("timeout huge", {"timeout": HUGE}, "timeout"),
    ("timeout bytes", {"timeout": b"10"}, "timeout"),
    ("timeout -inf", {"timeout": -math.inf}, "timeout"),
    ("timeout a list", {"timeout": [10]}, "timeout"),
    ("idempotency key empty", {"idempotency_key": ""}, "idempotency_key"),
    ("idempotency key with a space", {"idempotency_key": "a b"}, "idempotency_key"),
    ("idempotency key with NUL", {"idempotency_key": "key\0"}, "idempotency_key"),
    ("idempotency key with DEL", {"idempotency_key": "key\x7f"}, "idempotency_key"),
    ("idempotency key with a newline", {"idempotency_key": "k\nX-Evil: 1"}, "idempotency_key"),
    ("idempotency key non-ASCII", {"idempotency_key": "clé"}, "idempotency_key"),
    ("idempotency key 256 chars", {"idempotency_key": "k" * 256}, "idempotency_key"),
    ("idempotency key an int", {"idempotency_key": 42}, "idempotency_key"),
    ("idempotency key bytes", {"idempotency_key": b"key"}, "idempotency_key"),
    ("idempotency key True", {"idempotency_key": True}, "idempotency_key"),
]

KNOWN_BAD_CALLS = {}


@pytest.mark.parametrize(("arguments", "field"), rows(BAD_CALLS, KNOWN_BAD_CALLS))
async def test_bad_calls_are_refused_before_sending(
    server: ThreadedServer, arguments: dict[str, Any], field: str
) -> None:
    server.controls.reset_stats()
    arguments = dict(arguments)
    prompt = arguments.pop("prompt", "a fine prompt")
    async with ra.Session(KEY, server.base_url) as session:
        for call in (session.submit, session.generate):
            with pytest.raises(ra.ValidationError) as caught:
                await call(prompt, **arguments)
            assert caught.value.field == field
            assert isinstance(caught.value, ValueError)
            assert str(caught.value).startswith(f"{field}: ")
            assert len(str(caught.value)) > len(field) + 8
    assert_nothing_sent(server)


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

# (case, the Session keywords to change, what the message must name)
BAD_SESSIONS: list[tuple[str, Callable[[str], dict[str, Any]], str]] = [
    ("ftp base URL", lambda base: {"base_url": base.replace("http://", "ftp://")}, "base_url"),
    ("no scheme", lambda base: {"base_url": base.removeprefix("http://")}, "base_url"),
    ("not a URL", lambda base: {"base_url": "not a url"}, "base_url"),
    ("empty base URL", lambda base: {"base_url": "  "}, "base_url"),
    ("base URL not a str", lambda base: {"base_url": 8080}, "base_url"),
    ("base URL bytes", lambda base: {"base_url": base.encode()}, "base_url"),
    ("base URL with a query", lambda base: {"base_url": base + "?debug=1"}, "base_url"),
    ("base URL with a fragment", lambda base: {"base_url": base + "#top"}, "base_url"),
    (
        "base URL with credentials",
        lambda base: {"base_url": base.replace("//", "//u:p@")},
        "base_url",
    ),
    (
        "http to a remote host",
        lambda base: {"base_url": "http://api.example.com/v1"},
        "allow_insecure_http",
    ),
    (
        "http to a private address",
        lambda base: {"base_url": "http://10.0.0.8/v1"},
        "allow_insecure_http",
    ),
    ("empty key", lambda base: {"api_key": ""}, "API key"),
    ("blank key", lambda base: {"api_key": "   "}, "api_key"),
    ("two-line key", lambda base: {"api_key": KEY + "\nX-Evil: 1"}, "api_key"),
    ("key with a CR", lambda base: {"api_key": KEY + "\r"}, "api_key"),
    ("key with NUL", lambda base: {"api_key": KEY + "\0"}, "api_key"),
    ("key with DEL", lambda base: {"api_key": KEY + "\x7f"}, "api_key"),
    ("key with a tab", lambda base: {"api_key": "sk-\tabc123456"}, "api_key"),
    ("key non-ASCII", lambda base: {"api_key": "sk-€uro123456"}, "api_key"),
    ("key not a str", lambda base: {"api_key": 1234567}, "api_key"),
    ("key bytes", lambda base: {"api_key": KEY.encode()}, "api_key"),
    ("key a list", lambda base: {"api_key": [KEY]}, "api_key"),
    ("timeouts a dict", lambda base: {"timeouts": {"request": 1}}, "timeouts"),
    ("timeouts a number", lambda base: {"timeouts": 30}, "timeouts"),
    ("retry a number", lambda base: {"retry": 3}, "retry"),
    ("retry the class", lambda base: {"retry": ra.RetryPolicy}, "retry"),
    ("poll a str", lambda base: {"poll": "fast"}, "poll"),
    ("poll a Timeouts", lambda base: {"poll": ra.Timeouts()}, "poll"),
    ("limits a str", lambda base: {"limits": "many"}, "limits"),
    ("limits a dict", lambda base: {"limits": {"jobs": 1}}, "limits"),
    ("clock a str", lambda base: {"clock": "monotonic"}, "clock"),
    ("random an int", lambda base: {"random": 42}, "random"),
    ("allow_insecure_http str", lambda base: {"allow_insecure_http": "false"}, "allow_insecure"),
    ("allow_insecure_http 1", lambda base: {"allow_insecure_http": 1}, "allow_insecure_http"),
    ("allow_insecure_http None", lambda base: {"allow_insecure_http": None}, "allow_insecure_http"),
    ("fsync_downloads 'yes'", lambda base: {"fsync_downloads": "yes"}, "fsync_downloads"),
    ("fsync_downloads 0", lambda base: {"fsync_downloads": 0}, "fsync_downloads"),
    ("fsync_downloads None", lambda base: {"fsync_downloads": None}, "fsync_downloads"),
    ("timeout a str", lambda base: {"timeout": "5"}, "request"),
    ("timeout 0", lambda base: {"timeout": 0}, "request"),
    ("timeout -1", lambda base: {"timeout": -1}, "request"),
    ("timeout NaN", lambda base: {"timeout": math.nan}, "request"),
    ("timeout infinite", lambda base: {"timeout": math.inf}, "request"),
    ("timeout huge", lambda base: {"timeout": HUGE}, "request"),
    ("timeout True", lambda base: {"timeout": True}, "request"),
    ("timeout bytes", lambda base: {"timeout": b"5"}, "request"),
    ("timeout and timeouts", lambda base: {"timeout": 5, "timeouts": ra.Timeouts()}, "timeout"),
    ("max_retries -1", lambda base: {"max_retries": -1}, "max_retries"),
    ("max_retries True", lambda base: {"max_retries": True}, "max_retries"),
    ("max_retries 1.5", lambda base: {"max_retries": 1.5}, "max_retries"),
    ("max_retries a str", lambda base: {"max_retries": "3"}, "max_retries"),
    ("max_retries NaN", lambda base: {"max_retries": math.nan}, "max_retries"),
    (
        "max_retries and retry",
        lambda base: {"max_retries": 1, "retry": ra.RetryPolicy()},
        "max_retries",
    ),
]

KNOWN_BAD_SESSIONS: dict[str, pytest.MarkDecorator] = {}


@pytest.mark.parametrize(("change", "name"), rows(BAD_SESSIONS, KNOWN_BAD_SESSIONS))
def test_bad_session_settings_are_configuration_errors(
    server: ThreadedServer,
    change: Callable[[str], dict[str, Any]],
    name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server.controls.reset_stats()
    monkeypatch.delenv("RADIENT_API_KEY", raising=False)
    monkeypatch.delenv("RADIENT_BASE_URL", raising=False)
    options = {"api_key": KEY, "base_url": server.base_url, **change(server.base_url)}
    with pytest.raises(ra.ConfigurationError) as caught:
        ra.Session(**options)
    assert isinstance(caught.value, ValueError)
    assert name in str(caught.value)
    assert KEY not in str(caught.value)
    assert_nothing_sent(server)


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

# Bad values by kind of setting; every field of every policy gets every bad value of its kind.
NOT_NUMBERS: list[tuple[str, object]] = [
    ("a str", "10"),
    ("bytes", b"10"),
    ("None", None),
    ("True", True),
    ("False", False),
    ("a list", [10]),
    ("an object", object()),
    ("a Decimal", decimal.Decimal("10")),
]
BAD_BY_KIND: dict[str, list[tuple[str, object]]] = {
    # a duration > 0, finite
    "seconds": [
        *NOT_NUMBERS,
        ("0", 0),
        ("-1", -1),
        ("-0.5", -0.5),
        ("NaN", math.nan),
        ("inf", math.inf),
        ("-inf", -math.inf),
        ("10**400", HUGE),
    ],
    # a wait >= 0, finite
    "wait": [*NOT_NUMBERS, ("-1", -1), ("NaN", math.nan), ("inf", math.inf), ("10**400", HUGE)],
    # a deadline > 0 (inf: none)
    "deadline": [*NOT_NUMBERS, ("0", 0), ("-1", -1), ("NaN", math.nan), ("-inf", -math.inf)],
    "factor": [*NOT_NUMBERS, ("-0.5", -0.5), ("NaN", math.nan), ("inf", math.inf)],
    "fraction": [*NOT_NUMBERS, ("-0.1", -0.1), ("1", 1), ("1.5", 1.5), ("NaN", math.nan)],
    # a rate > 0, finite (None: no ceiling)
    "rate": [
        *(row for row in NOT_NUMBERS if row[1] is not None),
        ("0", 0),
        ("-1", -1),
        ("NaN", math.nan),
        ("inf", math.inf),
    ],
    "count": [*NOT_NUMBERS, ("0", 0), ("-1", -1), ("1.5", 1.5), ("2.0", 2.0), ("NaN", math.nan)],
    "retries": [*NOT_NUMBERS, ("-1", -1), ("1.5", 1.5), ("NaN", math.nan), ("inf", math.inf)],
}
POLICY_FIELDS: list[tuple[type[Any], str, str]] = [
    *(
        (ra.Limits, name, "count")
        for name in attrs_names(ra.Limits)
        if name != "requests_per_second"
    ),
    (ra.Limits, "requests_per_second", "rate"),
    *((ra.Timeouts, name, "seconds") for name in attrs_names(ra.Timeouts)),
    (ra.RetryPolicy, "max_retries", "retries"),
    (ra.RetryPolicy, "initial_backoff", "wait"),
    (ra.RetryPolicy, "max_backoff", "wait"),
    (ra.RetryPolicy, "max_retry_after", "wait"),
    (ra.RetryPolicy, "jitter", "factor"),
    (ra.PollPolicy, "first_delay", "seconds"),
    (ra.PollPolicy, "min_interval", "seconds"),
    (ra.PollPolicy, "max_interval", "seconds"),
    (ra.PollPolicy, "growth", "fraction"),
    (ra.PollPolicy, "jitter", "fraction"),
    (ra.PollPolicy, "timeout", "deadline"),
    (ra.PollPolicy, "max_unknown", "count"),
]


def _policy_row(cls: type[Any], name: str, label: str, value: object) -> tuple[Any, ...]:
    def build() -> object:
        return cls(**{name: value})

    return (f"{cls.__name__} {name} {label}", build, f"{cls.__name__}.{name}")


# (case, a constructor call, what the message must name)
BAD_POLICIES: list[tuple[str, Callable[[], object], str]] = [
    (
        "PollPolicy min above max",
        lambda: ra.PollPolicy(min_interval=2, max_interval=1),
        "min_interval",
    ),
    *(
        _policy_row(cls, name, label, value)
        for cls, name, kind in POLICY_FIELDS
        for label, value in BAD_BY_KIND[kind]
    ),
]


def test_every_policy_field_is_in_the_table() -> None:
    covered = {(cls, name) for cls, name, _ in POLICY_FIELDS}
    for cls in (ra.Limits, ra.Timeouts, ra.RetryPolicy, ra.PollPolicy):
        assert {(cls, name) for name in attrs_names(cls)} <= covered


@pytest.mark.parametrize(("build", "name"), rows(BAD_POLICIES, {}))
def test_bad_policy_values_are_configuration_errors(build: Callable[[], object], name: str) -> None:
    with pytest.raises(ra.ConfigurationError) as caught:
        build()
    assert isinstance(caught.value, ValueError)
    assert name in str(caught.value)
    assert len(str(caught.value)) > len(name) + 10


def test_a_policy_message_says_what_is_wrong_and_what_was_given() -> None:
    with pytest.raises(ra.ConfigurationError) as caught:
        ra.Timeouts(request=math.inf)
    assert str(caught.value) == (
        "Timeouts.request: must be a positive finite number of seconds, got inf"
    )
    with pytest.raises(ra.ConfigurationError) as caught:
        ra.Limits(jobs=True)
    assert str(caught.value) == "Limits.jobs: must be a positive integer, got True (bool)"
    with pytest.raises(ra.ConfigurationError) as caught:
        ra.RetryPolicy(max_backoff=HUGE)
    assert "an integer of 401 digits" in str(caught.value)


@pytest.mark.parametrize(
    "build",
    [
        lambda: ra.PollPolicy(timeout=math.inf),  # no job deadline
        lambda: ra.RetryPolicy(max_retries=0, initial_backoff=0, max_backoff=0, jitter=0),
        lambda: ra.Limits(jobs=HUGE),  # ints are exact: a huge cap is just no cap
        lambda: ra.Timeouts(request=1e300),
        lambda: ra.PollPolicy(growth=0, jitter=0.999),
    ],
)
def test_edge_policy_values_are_accepted(build: Callable[[], object]) -> None:
    assert build() is not None


# -- values built directly ------------------------------------------------------------------------

# (case, a constructor call, the field the error must name)
BAD_VALUES: list[tuple[str, Callable[[], object], str]] = [
    ("ImageSize float width", lambda: ra.ImageSize(64.0, 64), "image_size.width"),
    ("ImageSize None width", lambda: ra.ImageSize(None, 64), "image_size.width"),
    ("ImageSize str width", lambda: ra.ImageSize("64", 64), "image_size.width"),
    ("ImageSize True width", lambda: ra.ImageSize(True, 64), "image_size.width"),
    ("ImageSize huge width", lambda: ra.ImageSize(HUGE, 64), "image_size.width"),
    ("ImageSize zero height", lambda: ra.ImageSize(64, 0), "image_size.height"),
    ("ImageSize negative height", lambda: ra.ImageSize(64, -64), "image_size.height"),
    ("ImageSize NaN height", lambda: ra.ImageSize(64, math.nan), "image_size.height"),
    ("ImageSize bytes height", lambda: ra.ImageSize(64, b"64"), "image_size.height"),
    ("request prompt None", lambda: ra.GenerationRequest(prompt=None), "prompt"),
    ("request prompt bytes", lambda: ra.GenerationRequest(prompt=b"p"), "prompt"),
    (
        "request num_images str",
        lambda: ra.GenerationRequest(prompt="p", num_images="1"),
        "num_images",
    ),
    ("request sync_mode 1", lambda: ra.GenerationRequest(prompt="p", sync_mode=1), "sync_mode"),
    (
        "request source_url an int",
        lambda: ra.GenerationRequest(prompt="p", source_url=42),
        "source",
    ),
    (
        "request source_url a file URL",
        lambda: ra.GenerationRequest(prompt="p", source_url="file:///etc/passwd"),
        "source",
    ),
    (
        "request source_url bytes",
        lambda: ra.GenerationRequest(prompt="p", source_url=PNG),
        "source",
    ),
    ("request extra a list", lambda: ra.GenerationRequest(prompt="p", extra=[1]), "extra"),
    (
        "request extra bytes value",
        lambda: ra.GenerationRequest(prompt="p", extra={"b": b"x"}),
        "extra",
    ),
    (
        "request image_size a float",
        lambda: ra.GenerationRequest(prompt="p", image_size=1.5),
        "image_size",
    ),
    (
        "request seed huge",
        lambda: ra.GenerationRequest(prompt="p", seed=HUGE),
        "seed",
    ),
]


@pytest.mark.parametrize(("build", "field"), rows(BAD_VALUES, {}))
def test_bad_values_are_validation_errors(build: Callable[[], object], field: str) -> None:
    with pytest.raises(ra.ValidationError) as caught:
        build()
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


# -- methods of sessions, handles, results and images ---------------------------------------------


class RefusingFetcher:
    """An image fetcher that fails the test if a bad call ever gets as far as fetching."""

    async def read(self, image: ra.Image) -> bytes:
        raise AssertionError("read() reached the fetcher")

    async def save(self, image: ra.Image, path: Any, *, overwrite: bool) -> str:
        raise AssertionError("save() reached the fetcher")

    async def save_all(self, images: Any, directory: Any, *, overwrite: bool) -> list[str]:
        raise AssertionError("save_all() reached the fetcher")


def _image() -> Any:  # Any: the table passes what the signatures forbid
    return ra.Image(url=URL_SOURCE, request_id="imgreq_bad", fetcher=RefusingFetcher())


def _result(*images: ra.Image) -> Any:
    return ra.GenerationResult(request_id="imgreq_bad", images=images, fetcher=RefusingFetcher())


async def _drain(session: ra.Session, tmp: Path, **options: Any) -> None:
    async for _ in session.map(["a fine prompt"], **options):
        pass


def _a_file(tmp: Path) -> Path:
    path = tmp / "a-file.txt"
    path.write_text("not a folder")
    return path


Call = Callable[[ra.Session, Path], Awaitable[object]]


async def _job(session: ra.Session, *args: Any, **options: Any) -> object:
    return session.job(*args, **options)


async def _wait(timeout: object) -> object:
    return await ra.JobHandle("imgreq_bad", None).wait(timeout)  # type: ignore[arg-type]


# (case, the call, the field the error must name)
BAD_METHODS: list[tuple[str, Call, str]] = [
    ("job provider an int", lambda s, t: _job(s, "imgreq_x", 42), "provider"),
    ("job provider bytes", lambda s, t: _job(s, "imgreq_x", b"default"), "provider"),
    ("job provider empty", lambda s, t: _job(s, "imgreq_x", ""), "provider"),
    ("job request_id bytes", lambda s, t: _job(s, b"imgreq_x"), "request_id"),
    ("job request_id with NUL", lambda s, t: _job(s, "imgreq_\0x"), "request_id"),
    ("job timeout a str", lambda s, t: _job(s, "imgreq_x", timeout="5"), "timeout"),
    ("job timeout 0", lambda s, t: _job(s, "imgreq_x", timeout=0), "timeout"),
    ("job timeout -1", lambda s, t: _job(s, "imgreq_x", timeout=-1), "timeout"),
    ("job timeout NaN", lambda s, t: _job(s, "imgreq_x", timeout=math.nan), "timeout"),
    ("job timeout inf", lambda s, t: _job(s, "imgreq_x", timeout=math.inf), "timeout"),
    ("job timeout True", lambda s, t: _job(s, "imgreq_x", timeout=True), "timeout"),
    ("job timeout huge", lambda s, t: _job(s, "imgreq_x", timeout=HUGE), "timeout"),
    ("map concurrency NaN", lambda s, t: _drain(s, t, concurrency=math.nan), "concurrency"),
    ("map concurrency huge float", lambda s, t: _drain(s, t, concurrency=1e9), "concurrency"),
    ("map download_to a file", lambda s, t: _drain(s, t, download_to=_a_file(t)), "download_to"),
    ("map download_to empty", lambda s, t: _drain(s, t, download_to=""), "download_to"),
    ("map download_to an int", lambda s, t: _drain(s, t, download_to=42), "download_to"),
    (
        "map download_to bytes",
        lambda s, t: _drain(s, t, download_to=os.fsencode(t / "out")),
        "download_to",
    ),
    ("map download_to with NUL", lambda s, t: _drain(s, t, download_to="o\0ut"), "download_to"),
    ("map overwrite 'yes'", lambda s, t: _drain(s, t, overwrite="yes"), "overwrite"),
    ("map ordered 'yes'", lambda s, t: _drain(s, t, ordered="yes"), "ordered"),
    ("map fail_fast 1", lambda s, t: _drain(s, t, fail_fast=1), "fail_fast"),
    ("map manifest a folder", lambda s, t: _drain(s, t, manifest=t), "manifest"),
    ("map manifest an int", lambda s, t: _drain(s, t, manifest=42), "manifest"),
    ("map manifest with NUL", lambda s, t: _drain(s, t, manifest=str(t / "m\0.jsonl")), "manifest"),
    ("map progress a word", lambda s, t: _drain(s, t, progress="loud"), "progress"),
    ("map progress an int", lambda s, t: _drain(s, t, progress=42), "progress"),
    ("wait timeout a str", lambda s, t: _wait("5"), "timeout"),
    ("wait timeout -1", lambda s, t: _wait(-1), "timeout"),
    ("wait timeout NaN", lambda s, t: _wait(math.nan), "timeout"),
    ("wait timeout inf", lambda s, t: _wait(math.inf), "timeout"),
    ("wait timeout True", lambda s, t: _wait(True), "timeout"),
    ("wait timeout bytes", lambda s, t: _wait(b"5"), "timeout"),
    ("wait timeout huge", lambda s, t: _wait(HUGE), "timeout"),
    ("wait timeout a list", lambda s, t: _wait([5]), "timeout"),
    ("download None", lambda s, t: _result(_image()).download(None), "directory"),
    ("download an int", lambda s, t: _result(_image()).download(42), "directory"),
    ("download bytes", lambda s, t: _result(_image()).download(b"out"), "directory"),
    ("download empty", lambda s, t: _result(_image()).download(""), "directory"),
    ("download with NUL", lambda s, t: _result(_image()).download("o\0ut"), "directory"),
    ("download an object", lambda s, t: _result(_image()).download(object()), "directory"),
    ("download into a file", lambda s, t: _result(_image()).download(_a_file(t)), "directory"),
    ("download no images, None", lambda s, t: _result().download(None), "directory"),
    (
        "download overwrite 'yes'",
        lambda s, t: _result(_image()).download(t, overwrite="yes"),
        "overwrite",
    ),
    ("download overwrite 1", lambda s, t: _result(_image()).download(t, overwrite=1), "overwrite"),
    (
        "download overwrite None",
        lambda s, t: _result(_image()).download(t, overwrite=None),
        "overwrite",
    ),
    ("image download None", lambda s, t: _image().download(None), "path"),
    ("image download an int", lambda s, t: _image().download(3), "path"),
    ("image download bytes", lambda s, t: _image().download(b"a.png"), "path"),
    ("image download empty", lambda s, t: _image().download(""), "path"),
    ("image download with NUL", lambda s, t: _image().download("a\0.png"), "path"),
    (
        "image download overwrite 'no'",
        lambda s, t: _image().download(t, overwrite="no"),
        "overwrite",
    ),
    ("image download overwrite 0", lambda s, t: _image().download(t, overwrite=0), "overwrite"),
]

KNOWN_BAD_METHODS = {}


@pytest.mark.parametrize(("call", "field"), rows(BAD_METHODS, KNOWN_BAD_METHODS))
async def test_bad_method_arguments_are_refused_before_sending(
    server: ThreadedServer, tmp_path: Path, call: Call, field: str
) -> None:
    server.controls.reset_stats()
    async with ra.Session(KEY, server.base_url) as session:
        with pytest.raises(ra.ValidationError) as caught:
            await call(session, tmp_path)
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)
    assert str(caught.value).startswith(f"{field}: ")
    assert_nothing_sent(server)


async def test_good_wait_and_download_arguments_still_work(tmp_path: Path) -> None:
    handle = ra.JobHandle("imgreq_bad", None)
    with pytest.raises(ra.JobTimeout):
        await handle.wait(0)
    with pytest.raises(ra.JobTimeout):
        await handle.wait(0.01)
    assert await _result().download(tmp_path / "nothing") == []
