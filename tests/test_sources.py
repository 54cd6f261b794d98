"""Tests for ``radient_async._sources``: sniffing, URL checks, encoding and input dispatch."""

from __future__ import annotations

import array
import base64
import contextlib
import io
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import anyio
import anyio.from_thread
import anyio.to_thread
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from radient_async import _sources
from radient_async._errors import ValidationError
from radient_async._sources import (
    DEFAULT_MAX_SOURCE_BYTES,
    encode_data_uri,
    resolve_source,
    sniff_image_type,
    validate_source_url,
)

FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def image_bytes(fmt: str, size: tuple[int, int] = (8, 6)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 90)).save(buffer, format=fmt)
    return buffer.getvalue()


def decode(uri: str) -> tuple[str, bytes]:
    header, _, payload = uri.partition(",")
    assert header.startswith("data:")
    assert header.endswith(";base64")
    return header[5 : -len(";base64")], base64.b64decode(payload, validate=True)


def data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def rejects(match: str = "") -> Any:
    return pytest.raises(ValidationError, match=match)


def test_public_names() -> None:
    assert set(_sources.__all__) == {
        "DEFAULT_MAX_SOURCE_BYTES",
        "TRAILER_BYTES",
        "ImageLike",
        "SourceInput",
        "encode_data_uri",
        "image_is_complete",
        "resolve_source",
        "sniff_image_type",
        "validate_source_url",
    }
    assert DEFAULT_MAX_SOURCE_BYTES == 20 * 1024 * 1024


def test_errors_name_the_field_and_are_value_errors() -> None:
    with pytest.raises(ValueError, match="source") as info:
        validate_source_url("file:///etc/passwd")
    assert isinstance(info.value, ValidationError)
    assert info.value.field == "source"


# --- sniffing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "mime"), FORMATS.items())
def test_sniff_real_images(fmt: str, mime: str) -> None:
    assert sniff_image_type(image_bytes(fmt)) == mime


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff\xe0rest", "image/jpeg"),
        (b"GIF87a...", "image/gif"),
        (b"GIF89a...", "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"", None),
        (b"\x89PNG\r\n\x1a", None),  # truncated magic
        (b"\xff\xd8", None),
        (b"GIF88a", None),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", None),  # a RIFF that is audio
        (b"RIFFWEBP", None),  # WEBP in the wrong place
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", None),
        (b"BM\x00\x00", None),  # BMP is not accepted
        (b"hello world", None),
    ],
)
def test_sniff_table(data: bytes, expected: str | None) -> None:
    assert sniff_image_type(data) == expected


def test_sniff_accepts_bytes_like() -> None:
    png = image_bytes("PNG")
    assert sniff_image_type(bytearray(png)) == "image/png"
    assert sniff_image_type(memoryview(png)) == "image/png"


# --- encode_data_uri -----------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "mime"), FORMATS.items())
def test_encode_round_trip(fmt: str, mime: str) -> None:
    data = image_bytes(fmt)
    uri = encode_data_uri(data)
    assert decode(uri) == (mime, data)
    assert validate_source_url(uri) == uri


def test_encode_bytes_like_without_changing_content() -> None:
    data = image_bytes("PNG")
    for value in (bytearray(data), memoryview(data)):
        assert decode(encode_data_uri(value))[1] == data
    strided = memoryview(data + data)[::2]  # non-contiguous: copied, then encoded
    expected = (data + data)[::2]
    assert sniff_image_type(expected) is None
    with rejects("not a PNG"):
        encode_data_uri(strided)
    wide = memoryview(array.array("B", data)).cast("B", (len(data),))
    assert decode(encode_data_uri(wide))[1] == data


def test_encode_multibyte_memoryview_counts_bytes() -> None:
    data = image_bytes("PNG")
    data += b"\x00" * (-len(data) % 4)
    items = memoryview(data).cast("I")
    assert decode(encode_data_uri(items))[1] == data
    with rejects("exceeds"):
        encode_data_uri(items, max_bytes=len(data) - 1)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "empty"),
        (b"plain text, not an image", "not a PNG, JPEG, GIF or WebP"),
        (b"BM\x00\x00\x00\x00", "not a PNG"),
    ],
)
def test_encode_rejects(data: bytes, match: str) -> None:
    with rejects(match):
        encode_data_uri(data)


def test_encode_size_limit_is_inclusive() -> None:
    data = image_bytes("PNG")
    assert encode_data_uri(data, max_bytes=len(data))
    with rejects(f"{len(data)} bytes exceeds the {len(data) - 1} byte limit"):
        encode_data_uri(data, max_bytes=len(data) - 1)


def test_encode_rejects_non_bytes() -> None:
    with rejects("expected bytes, not str"):
        encode_data_uri("\x89PNG")  # type: ignore[arg-type]


# --- validate_source_url -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/cat.png",
        "http://example.com",
        "HTTPS://Example.COM/a.png?x=1&y=2#frag",
        "http://localhost:8080/img.jpg",
        "http://127.0.0.1/x.png",
        "http://[::1]:9000/x.png",
        "https://xn--bcher-kva.example/b%C3%BCcher.png",
        "https://bücher.example/b.png",
    ],
)
def test_validate_accepts_http_urls(url: str) -> None:
    assert validate_source_url(url) == url


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("", "empty"),
        ("file:///etc/passwd", "not scheme 'file'"),
        ("ftp://example.com/a.png", "not scheme 'ftp'"),
        ("javascript:alert(1)", "not scheme 'javascript'"),
        ("mailto:someone@example.com", "not scheme 'mailto'"),
        ("example.com/a.png", "not scheme 'none'"),
        ("//example.com/a.png", "not scheme 'none'"),
        ("http://", "no host"),
        ("https:///path/only", "no host"),
        ("http://:80/", "no host"),
        ("https://user:secret@example.com/a.png", "credentials"),
        ("https://user@example.com/a.png", "credentials"),
        ("https://@example.com/a.png", "credentials"),
        ("https://example.com/a b.png", "whitespace"),
        (" https://example.com/a.png", "whitespace"),
        ("https://example.com/a.png\n", "whitespace"),
        ("https://example.com/\ta.png", "whitespace"),
        ("https://example.com/\x00.png", "control"),
        ("https://example.com/\x7f.png", "control"),
        ("https://example.com/\u200b.png", "control"),
        ("https://example.com/\u00a0.png", "whitespace"),
        ("http://example.com:99999/", "malformed"),
        ("http://example.com:port/", "malformed"),
        ("http://[::1/", "malformed"),
    ],
)
def test_validate_rejects_urls(url: str, match: str) -> None:
    with rejects(match):
        validate_source_url(url)


@pytest.mark.parametrize("value", [None, 3, b"https://example.com/a.png", Path("a.png")])
def test_validate_rejects_non_strings(value: object) -> None:
    with rejects("must be a URL string"):
        validate_source_url(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(("fmt", "mime"), FORMATS.items())
def test_validate_accepts_image_data_uris(fmt: str, mime: str) -> None:
    uri = data_uri(mime, image_bytes(fmt))
    assert validate_source_url(uri) == uri


def test_validate_data_uri_case_and_parameters() -> None:
    png = image_bytes("PNG")
    payload = base64.b64encode(png).decode()
    for uri in (
        f"DATA:IMAGE/PNG;BASE64,{payload}",
        f"data:image/png;name=cat.png;base64,{payload}",
    ):
        assert validate_source_url(uri) == uri


def test_validate_data_uri_rejections() -> None:
    png, jpeg = image_bytes("PNG"), image_bytes("JPEG")
    payload = base64.b64encode(png).decode()
    cases = {
        "data:image/png;base64": "no comma",
        f"data:image/png,{payload}": "must be base64",
        f"data:image/png;base64;charset=x,{payload}": "must be base64",
        f"data:;base64,{payload}": "type 'missing' is not an image",
        f"data:text/plain;base64,{payload}": "'text/plain' is not an image",
        f"data:image/svg+xml;base64,{payload}": "'image/svg\\+xml' is not an image",
        f"data:image/jpg;base64,{payload}": "'image/jpg' is not an image",
        f"data: image/png;base64,{payload}": "whitespace",
        "data:image/png;base64,": "holds no data",
        "data:image/png;base64,@@@@": "invalid base64",
        f"data:image/png;base64,{payload[:-1]}": "invalid base64",  # broken padding
        f"data:image/png;base64,{payload[:8]}\n{payload[8:]}": "invalid base64",
        f"data:image/png;base64,{payload} ": "invalid base64",
        f"data:image/png;base64,{payload}é": "invalid base64",
        f"data:image/png;base64,{payload}{payload}": "invalid base64",  # data after padding
        data_uri("image/png", b"just some text"): "content is not a PNG",
        data_uri("image/png", jpeg): "says image/png but holds image/jpeg",
        data_uri("image/gif", png): "says image/gif but holds image/png",
    }
    for uri, match in cases.items():
        with rejects(match):
            validate_source_url(uri)


def test_validate_data_uri_rejects_url_safe_alphabet() -> None:
    # Bytes chosen so the standard encoding needs '+' and '/'; the URL-safe one uses '-' and '_'.
    png = image_bytes("PNG") + b"\xfb\xff\xbf" * 4
    standard = base64.b64encode(png).decode()
    url_safe = base64.urlsafe_b64encode(png).decode()
    assert standard != url_safe
    assert validate_source_url(f"data:image/png;base64,{standard}")
    with rejects("invalid base64"):
        validate_source_url(f"data:image/png;base64,{url_safe}")


def test_validate_data_uri_size_limit() -> None:
    png = image_bytes("PNG")
    uri = data_uri("image/png", png)
    assert validate_source_url(uri, max_bytes=len(png)) == uri
    with rejects("exceeds"):
        validate_source_url(uri, max_bytes=len(png) - 1)
    with rejects("exceeds"):  # refused from its length, before decoding
        validate_source_url(uri, max_bytes=len(png) // 2)


def test_validate_huge_data_uri_refused_without_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("decoded a payload that was too large by its length alone")

    monkeypatch.setattr(base64, "b64decode", fail)
    with rejects("exceeds"):
        validate_source_url("data:image/png;base64," + "A" * 4000, max_bytes=1000)


# --- resolve_source ------------------------------------------------------------------------------


def write_image(tmp_path: Path, fmt: str) -> tuple[Path, bytes]:
    data = image_bytes(fmt)
    path = tmp_path / f"image.{fmt.lower()}"
    path.write_bytes(data)
    return path, data


@pytest.mark.anyio
@pytest.mark.parametrize(("fmt", "mime"), FORMATS.items())
async def test_resolve_file_round_trip(tmp_path: Path, fmt: str, mime: str) -> None:
    path, data = write_image(tmp_path, fmt)
    for source in (path, str(path)):
        assert decode(await resolve_source(source)) == (mime, data)


@pytest.mark.anyio
async def test_resolve_sniffs_content_not_extension(tmp_path: Path) -> None:
    path = tmp_path / "actually-a-gif.png"
    path.write_bytes(image_bytes("GIF"))
    assert decode(await resolve_source(path))[0] == "image/gif"


@pytest.mark.anyio
@pytest.mark.parametrize(("fmt", "mime"), FORMATS.items())
async def test_resolve_bytes_like(fmt: str, mime: str) -> None:
    data = image_bytes(fmt)
    for source in (data, bytearray(data), memoryview(data)):
        assert decode(await resolve_source(source)) == (mime, data)


@pytest.mark.anyio
async def test_resolve_binary_file_objects(tmp_path: Path) -> None:
    path, data = write_image(tmp_path, "WEBP")
    assert decode(await resolve_source(io.BytesIO(data))) == ("image/webp", data)
    with path.open("rb") as handle:
        assert decode(await resolve_source(handle)) == ("image/webp", data)
    with path.open("rb", buffering=0) as raw:
        assert decode(await resolve_source(raw)) == ("image/webp", data)


@pytest.mark.anyio
async def test_resolve_reads_file_object_from_its_position() -> None:
    data = image_bytes("PNG")
    stream = io.BytesIO(b"junk" + data)
    stream.seek(4)
    assert decode(await resolve_source(stream))[1] == data


@pytest.mark.anyio
async def test_resolve_passes_urls_through() -> None:
    url = "https://example.com/cat.png"
    assert await resolve_source(url) == url
    uri = data_uri("image/jpeg", image_bytes("JPEG"))
    assert await resolve_source(uri) == uri


@pytest.mark.anyio
async def test_resolve_large_inputs_are_handled_off_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_sources, "_OFFLOAD_BYTES", 16)
    calls = spy_on_threads(monkeypatch)
    data = image_bytes("PNG")
    assert decode(await resolve_source(data))[1] == data
    uri = data_uri("image/png", data)
    assert await resolve_source(uri) == uri
    assert calls == ["_encode", "_validate_url"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("source", "match"),
    [
        ("file:///etc/passwd", "not scheme 'file'"),
        ("FILE:///etc/passwd", "not scheme 'file'"),
        ("ftp://example.com/a.png", "not scheme 'ftp'"),
        ("s3://bucket/key.png", "not scheme 's3'"),
        ("  https://example.com/a.png", "whitespace"),
        ("https://user:pw@example.com/a.png", "credentials"),
        ("data:text/plain;base64,aGVsbG8=", "not an image"),
        ("", "empty"),
        ("   ", "empty"),
    ],
)
async def test_resolve_rejects_bad_urls_rather_than_reading_paths(
    source: str, match: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = spy_on_threads(monkeypatch)
    with rejects(match):
        await resolve_source(source)
    assert calls == []


@pytest.mark.anyio
async def test_resolve_rejects_non_image_files(tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not really a png\n")
    with rejects("not a PNG, JPEG, GIF or WebP"):
        await resolve_source(text)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with rejects(f"{str(empty)!r} is empty"):
        await resolve_source(empty)


@pytest.mark.anyio
async def test_resolve_rejects_missing_and_directory_paths(tmp_path: Path) -> None:
    missing = tmp_path / "nope.png"
    with rejects(f"no such file: {str(missing)!r}") as info:
        await resolve_source(missing)
    assert info.value.field == "source"
    with rejects("no such file: 'relative/nope.png'"):
        await resolve_source("relative/nope.png")
    with rejects("no such file: 'C://images/a.png'"):  # a drive letter is not a URL scheme
        await resolve_source("C://images/a.png")
    with rejects(f"{str(tmp_path)!r} is a directory"):
        await resolve_source(tmp_path)
    with rejects("no such file"):
        await resolve_source(tmp_path / "missing-dir" / "a.png")


@pytest.mark.anyio
async def test_resolve_rejects_invalid_and_special_paths(tmp_path: Path) -> None:
    with rejects("invalid path"):
        await resolve_source("bad\x00name.png")
    if os.path.exists("/dev/zero"):
        with rejects("not a regular file"):
            await resolve_source("/dev/zero")


@pytest.mark.anyio
@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="needs POSIX non-root")
async def test_resolve_rejects_unreadable_file(tmp_path: Path) -> None:
    path, _ = write_image(tmp_path, "PNG")
    path.chmod(0)
    try:
        with rejects(f"cannot read {str(path)!r}: Permission denied"):
            await resolve_source(path)
    finally:
        path.chmod(0o600)


@pytest.mark.anyio
async def test_resolve_size_limit(tmp_path: Path) -> None:
    path, data = write_image(tmp_path, "PNG")
    assert await resolve_source(path, max_bytes=len(data))
    with rejects(f"{len(data)} bytes exceeds"):
        await resolve_source(path, max_bytes=len(data) - 1)
    with rejects("exceeds"):
        await resolve_source(data, max_bytes=10)
    with rejects("exceeds"):
        await resolve_source(io.BytesIO(data), max_bytes=10)


@pytest.mark.anyio
async def test_resolve_refuses_huge_file_by_stat_without_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    huge = tmp_path / "huge.png"
    with huge.open("wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n")
        handle.truncate(10 * 1024**3)  # sparse: 10 GB without using the disk

    def no_open(*args: object, **kwargs: object) -> Any:
        raise AssertionError("opened a file that stat already showed was too large")

    monkeypatch.setattr(_sources, "open", no_open, raising=False)
    with rejects(f"{10 * 1024**3} bytes exceeds the {DEFAULT_MAX_SOURCE_BYTES} byte limit"):
        await resolve_source(huge)


@pytest.mark.anyio
async def test_resolve_rejects_text_and_unusable_file_objects(tmp_path: Path) -> None:
    path, _ = write_image(tmp_path, "PNG")
    with rejects("text mode"):
        await resolve_source(io.StringIO("hello"))  # type: ignore[arg-type]
    with path.open("r", encoding="latin-1") as text, rejects("text mode; open it with 'rb'"):
        await resolve_source(text)  # type: ignore[arg-type]
    closed = io.BytesIO(image_bytes("PNG"))
    closed.close()
    with rejects("cannot read the file object"):
        await resolve_source(closed)
    with path.open("ab") as write_only, rejects("cannot read the file object"):
        await resolve_source(write_only)
    with rejects("empty"):
        await resolve_source(io.BytesIO())

    class Weird:
        def read(self, size: int = -1) -> int:
            return 42

    with rejects("read\\(\\) returned int"):
        await resolve_source(Weird())  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_resolve_rejects_async_file_objects(tmp_path: Path) -> None:
    path, _ = write_image(tmp_path, "PNG")
    async with await anyio.open_file(path, "rb") as handle:
        with rejects("async file objects are not supported"):
            await resolve_source(handle)  # type: ignore[arg-type]


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P", "1"])
async def test_resolve_pil_image_as_png(mode: str) -> None:
    image = Image.new("RGB", (5, 4), (10, 120, 250)).convert(mode)
    mime, data = decode(await resolve_source(image))
    assert mime == "image/png"
    with Image.open(io.BytesIO(data)) as back:
        assert back.format == "PNG"
        assert back.size == image.size
        assert back.mode == image.mode
        assert back.convert("RGBA").tobytes() == image.convert("RGBA").tobytes()


@pytest.mark.anyio
async def test_resolve_pil_image_from_file_keeps_pixels(tmp_path: Path) -> None:
    path, _ = write_image(tmp_path, "GIF")
    with Image.open(path) as image:
        mime, data = decode(await resolve_source(image))
        assert mime == "image/png"
        with Image.open(io.BytesIO(data)) as back:
            assert back.convert("RGB").tobytes() == image.convert("RGB").tobytes()


@pytest.mark.anyio
async def test_resolve_pil_image_errors() -> None:
    with rejects("cannot save the CMYK image as PNG"):
        await resolve_source(Image.new("CMYK", (2, 2)))
    with rejects("exceeds"):
        await resolve_source(Image.new("RGB", (64, 64)), max_bytes=20)


@pytest.mark.anyio
async def test_resolve_duck_typed_image_does_not_need_pillow() -> None:
    png = image_bytes("PNG")

    class FakeImage:
        mode = "RGB"
        size = (8, 6)

        def save(self, fp: BinaryIO, format: str | None = None) -> None:
            assert format == "PNG"
            fp.write(png)

    assert decode(await resolve_source(FakeImage()))[1] == png


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("source", "name"),
    [
        (None, "NoneType"),
        (42, "int"),
        (4.2, "float"),
        (True, "bool"),
        ({"url": "https://example.com/a.png"}, "dict"),
        (["https://example.com/a.png"], "list"),
        (object(), "object"),
    ],
)
async def test_resolve_rejects_wrong_types(source: object, name: str) -> None:
    with rejects(f"expected a URL, path, bytes, binary file or PIL image, not {name}$"):
        await resolve_source(source)  # type: ignore[arg-type]


def spy_on_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the name of each function ``resolve_source`` hands to a worker thread."""
    calls: list[str] = []
    real = anyio.to_thread.run_sync

    async def run_sync(func: Callable[..., Any], *args: object, **kwargs: Any) -> Any:
        calls.append(func.__name__)
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", run_sync)
    return calls


@pytest.mark.anyio
async def test_file_work_runs_in_worker_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = spy_on_threads(monkeypatch)
    path, data = write_image(tmp_path, "JPEG")
    await resolve_source(path)
    await resolve_source(str(path))
    await resolve_source(io.BytesIO(data))
    await resolve_source(Image.new("RGB", (3, 3)))
    await resolve_source(data)  # small bytes: encoded inline
    await resolve_source("https://example.com/a.png")  # pure check, inline
    assert calls == ["_encode_path", "_encode_path", "_encode_stream", "_encode_pil"]


@pytest.mark.anyio
async def test_loop_keeps_ticking_during_a_slow_read() -> None:
    data = image_bytes("PNG")
    started = anyio.Event()
    ticks = 0

    class SlowStream(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            anyio.from_thread.run_sync(started.set)
            time.sleep(0.1)  # blocks this worker thread, not the event loop
            return super().read(size)

    async def ticker() -> None:
        nonlocal ticks
        await started.wait()
        while True:
            ticks += 1
            await anyio.sleep(0.001)

    async with anyio.create_task_group() as group:
        group.start_soon(ticker)
        result = await resolve_source(SlowStream(data))
        group.cancel_scope.cancel()
    assert decode(result)[1] == data
    assert ticks >= 5


# --- properties ----------------------------------------------------------------------------------


@given(st.text())
def test_validate_arbitrary_text_only_raises_validation_error(text: str) -> None:
    with contextlib.suppress(ValidationError):
        assert validate_source_url(text) == text


@given(st.sampled_from(["data:", "data:image/png;base64,", "http://", "https://"]), st.text())
def test_validate_url_like_text_only_raises_validation_error(prefix: str, text: str) -> None:
    with contextlib.suppress(ValidationError):
        assert validate_source_url(prefix + text) == prefix + text


@given(st.binary())
def test_arbitrary_bytes_only_raise_validation_error(data: bytes) -> None:
    mime = sniff_image_type(data)
    assert mime in (None, *FORMATS.values())
    try:
        uri = encode_data_uri(data, max_bytes=64)
    except ValidationError:
        assert mime is None or not data or len(data) > 64
    else:
        assert decode(uri) == (mime, data)
        assert validate_source_url(uri, max_bytes=64) == uri


@given(st.sampled_from(list(FORMATS.values())), st.binary(max_size=64))
def test_magic_prefix_round_trips(mime: str, tail: bytes) -> None:
    magic = {
        "image/png": b"\x89PNG\r\n\x1a\n",
        "image/jpeg": b"\xff\xd8\xff",
        "image/gif": b"GIF89a",
        "image/webp": b"RIFF\x00\x00\x00\x00WEBP",
    }[mime]
    uri = encode_data_uri(magic + tail)
    assert decode(uri) == (mime, magic + tail)
    assert validate_source_url(uri) == uri
