"""Image-to-image inputs: turn what the caller has into the ``source_url`` the API takes.

Accepts an http(s) URL or ``data:`` URI (checked, passed through), a file path, bytes, a binary file
object or a PIL image (sent as a base64 ``data:`` URI). The MIME type is sniffed from the bytes,
never trusted from a file name; only PNG, JPEG, GIF and WebP are accepted, within a size limit.
Files are read (and large payloads encoded) in a worker thread so the event loop never blocks.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import io
import os
import re
import stat
from typing import Any, BinaryIO, Protocol, TypeAlias
from urllib.parse import urlsplit

import anyio.to_thread

from ._errors import ValidationError

__all__ = [
    "DEFAULT_MAX_SOURCE_BYTES",
    "TRAILER_BYTES",
    "ImageLike",
    "SourceInput",
    "encode_data_uri",
    "image_is_complete",
    "resolve_source",
    "sniff_image_type",
    "validate_source_url",
]

DEFAULT_MAX_SOURCE_BYTES = 20 * 1024 * 1024
_FIELD = "source"
_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
_NOT_AN_IMAGE = "not a PNG, JPEG, GIF or WebP image"
# Payloads above this are encoded/decoded in a worker thread rather than on the event loop.
_OFFLOAD_BYTES = 1024 * 1024
# ``scheme://`` with a scheme of two or more letters, so a Windows drive (``C://x``) stays a path.
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]+://")


class ImageLike(Protocol):
    """What we use of a ``PIL.Image.Image`` (duck-typed, so Pillow stays optional)."""

    @property
    def mode(self) -> str: ...

    @property
    def size(self) -> tuple[int, int]: ...

    def save(self, fp: BinaryIO, format: str | None = None) -> None: ...


SourceInput: TypeAlias = (
    "str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO | ImageLike"
)
_Buffer: TypeAlias = "bytes | bytearray | memoryview"


def sniff_image_type(data: _Buffer) -> str | None:
    """The MIME type from the magic bytes (PNG, JPEG, GIF, WebP), or None."""
    head = bytes(data[:12])
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    return None


_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
TRAILER_BYTES = len(_PNG_END)  # the most of a body's end that completeness checks look at


def image_is_complete(mime: str, head: bytes, tail: bytes, size: int) -> bool:
    """Whether an image of type ``mime`` ends the way its format ends (a cut body does not).

    ``head`` is the body's first 12 bytes, ``tail`` its last ``TRAILER_BYTES``, ``size`` its
    length. PNG ends with its ``IEND`` chunk, JPEG with the EOI marker, GIF with its trailer byte;
    a WebP's RIFF header states its length.
    """
    if mime == "image/png":
        return tail.endswith(_PNG_END)
    if mime == "image/jpeg":
        return tail.rstrip(b"\x00").endswith(b"\xff\xd9")  # some encoders pad after EOI
    if mime == "image/gif":
        return tail.endswith(b"\x3b")
    if mime == "image/webp":
        riff = int.from_bytes(head[4:8], "little")
        return size >= riff + 8
    return True


def _too_large(size: int, max_bytes: int) -> ValidationError:
    return ValidationError(_FIELD, f"image of {size} bytes exceeds the {max_bytes} byte limit")


def _byte_view(data: object) -> memoryview:
    """A flat byte view of a bytes-like object, copying only if it is not contiguous."""
    try:
        view = memoryview(data)  # type: ignore[arg-type]
    except TypeError:
        raise ValidationError(_FIELD, f"expected bytes, not {type(data).__name__}") from None
    if view.ndim == 1 and view.format == "B":
        return view
    return view.cast("B") if view.c_contiguous else memoryview(view.tobytes())


def encode_data_uri(data: _Buffer, *, max_bytes: int = DEFAULT_MAX_SOURCE_BYTES) -> str:
    """``data:<sniffed type>;base64,...`` for image bytes; anything else is a ValidationError."""
    view = _byte_view(data)
    if not view.nbytes:
        raise ValidationError(_FIELD, "the image is empty")
    if view.nbytes > max_bytes:
        raise _too_large(view.nbytes, max_bytes)
    mime = sniff_image_type(view)
    if mime is None:
        raise ValidationError(_FIELD, _NOT_AN_IMAGE)
    return f"data:{mime};base64,{base64.b64encode(view).decode('ascii')}"


def validate_source_url(value: str, *, max_bytes: int = DEFAULT_MAX_SOURCE_BYTES) -> str:
    """Check a URL source: http(s) with a host, or a base64 image ``data:`` URI; returns it."""
    if not isinstance(value, str):
        raise ValidationError(_FIELD, f"must be a URL string, not {type(value).__name__}")
    if not value:
        raise ValidationError(_FIELD, "the URL is empty")
    if value[:5].lower() == "data:":
        _check_data_uri(value, max_bytes)
        return value
    if " " in value or not value.isprintable():
        raise ValidationError(_FIELD, "URL contains whitespace or control characters")
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValidationError(_FIELD, "malformed URL") from None
    if parts.scheme.lower() not in ("http", "https"):
        scheme = parts.scheme or "none"
        raise ValidationError(_FIELD, f"only http(s) URLs or data: URIs, not scheme {scheme!r}")
    if not host:
        raise ValidationError(_FIELD, "URL has no host")
    if "@" in parts.netloc:
        raise ValidationError(_FIELD, "URL must not embed credentials")
    return value


def _check_data_uri(value: str, max_bytes: int) -> None:
    comma = value.find(",")
    if comma < 0:
        raise ValidationError(_FIELD, "malformed data: URI (no comma)")
    header = value[5:comma]
    if " " in header or not header.isprintable():
        raise ValidationError(_FIELD, "data: URI header contains whitespace or control characters")
    params = header.lower().split(";")
    if len(params) < 2 or params[-1] != "base64":
        raise ValidationError(_FIELD, "data: URI must be base64-encoded (';base64,')")
    declared = params[0]
    if declared not in _TYPES:
        raise ValidationError(_FIELD, f"data: URI type {declared or 'missing'!r} is not an image")
    encoded = len(value) - comma - 1
    if encoded == 0:
        raise ValidationError(_FIELD, "data: URI holds no data")
    if encoded // 4 * 3 - 2 > max_bytes:  # the least it can decode to
        raise _too_large(encoded // 4 * 3, max_bytes)
    try:
        data = base64.b64decode(value[comma + 1 :], validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(_FIELD, "data: URI has invalid base64") from None
    if len(data) > max_bytes:
        raise _too_large(len(data), max_bytes)
    sniffed = sniff_image_type(data)
    if sniffed is None:
        raise ValidationError(_FIELD, f"data: URI content is {_NOT_AN_IMAGE}")
    if sniffed != declared:
        raise ValidationError(_FIELD, f"data: URI says {declared} but holds {sniffed}")


def _is_url(text: str) -> bool:
    """True for strings meant as URLs (http(s), data:, or any other ``scheme://``), not paths."""
    text = text.lstrip()
    return text[:8].lower().startswith(("http://", "https://", "data:")) or bool(
        _SCHEME_RE.match(text)
    )


def _read_path(path: str | bytes, max_bytes: int) -> bytes:
    """Read a regular file, refusing it by ``stat`` size before reading (worker thread)."""
    shown = os.fsdecode(path)
    try:
        info = os.stat(path)
    except ValueError as exc:  # an embedded NUL, for one
        raise ValidationError(_FIELD, f"invalid path {shown!r}: {exc}") from None
    except OSError as exc:
        raise _unreadable(shown, exc) from None
    if stat.S_ISDIR(info.st_mode):
        raise ValidationError(_FIELD, f"{shown!r} is a directory, not an image file")
    if not stat.S_ISREG(info.st_mode):
        raise ValidationError(_FIELD, f"{shown!r} is not a regular file")
    if info.st_size > max_bytes:
        raise _too_large(info.st_size, max_bytes)
    try:
        with open(path, "rb") as handle:
            data = handle.read(min(info.st_size, max_bytes) + 1)
            if len(data) > info.st_size:  # it grew since stat (or stat under-reports, as /proc)
                data += handle.read(max_bytes + 1 - len(data))
    except OSError as exc:
        raise _unreadable(shown, exc) from None
    if not data:
        raise ValidationError(_FIELD, f"{shown!r} is empty")
    return data


def _unreadable(shown: str, exc: OSError) -> ValidationError:
    if isinstance(exc, FileNotFoundError):
        return ValidationError(_FIELD, f"no such file: {shown!r}")
    return ValidationError(_FIELD, f"cannot read {shown!r}: {exc.strerror or exc}")


def _read_stream(stream: Any, max_bytes: int) -> _Buffer:
    """Read at most ``max_bytes + 1`` bytes from a binary file object (worker thread)."""
    try:
        data = stream.read(max_bytes + 1)
    except (OSError, ValueError) as exc:  # closed, or not opened for reading
        raise ValidationError(_FIELD, f"cannot read the file object: {exc}") from None
    if isinstance(data, str):
        raise ValidationError(_FIELD, "file object is in text mode; open it with 'rb'")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValidationError(_FIELD, f"file object's read() returned {type(data).__name__}")
    return data


def _encode_pil(image: Any, max_bytes: int) -> str:
    """Save a PIL image as PNG and encode it (worker thread)."""
    buffer = io.BytesIO()
    try:
        image.save(buffer, format="PNG")
    except (OSError, ValueError, KeyError) as exc:
        raise ValidationError(
            _FIELD, f"cannot save the {image.mode} image as PNG ({exc}); try .convert('RGB')"
        ) from None
    with buffer.getbuffer() as view:  # no copy of the PNG bytes
        return encode_data_uri(view, max_bytes=max_bytes)


def _is_image_like(value: object) -> bool:
    return all(hasattr(value, name) for name in ("save", "mode", "size"))


async def resolve_source(source: SourceInput, *, max_bytes: int = DEFAULT_MAX_SOURCE_BYTES) -> str:
    """The ``source_url`` for any supported input (see the module docstring)."""
    if isinstance(source, str):
        if not source.strip():
            raise ValidationError(_FIELD, "is empty; give a URL, a path, bytes or an image")
        if _is_url(source):
            if len(source) > _OFFLOAD_BYTES:
                return await anyio.to_thread.run_sync(_validate_url, source, max_bytes)
            return validate_source_url(source, max_bytes=max_bytes)
        return await anyio.to_thread.run_sync(_encode_path, source, max_bytes)
    if isinstance(source, os.PathLike):
        return await anyio.to_thread.run_sync(_encode_path, os.fspath(source), max_bytes)
    if isinstance(source, (bytes, bytearray, memoryview)):
        if _byte_view(source).nbytes > _OFFLOAD_BYTES:
            return await anyio.to_thread.run_sync(_encode, source, max_bytes)
        return encode_data_uri(source, max_bytes=max_bytes)
    read = getattr(source, "read", None)
    if callable(read):
        if inspect.iscoroutinefunction(read):
            raise ValidationError(_FIELD, "async file objects are not supported; pass the path")
        return await anyio.to_thread.run_sync(_encode_stream, source, max_bytes)
    if _is_image_like(source):
        return await anyio.to_thread.run_sync(_encode_pil, source, max_bytes)
    expected = "a URL, path, bytes, binary file or PIL image"
    raise ValidationError(_FIELD, f"expected {expected}, not {type(source).__name__}")


def _validate_url(value: str, max_bytes: int) -> str:
    return validate_source_url(value, max_bytes=max_bytes)


def _encode(data: _Buffer, max_bytes: int) -> str:
    return encode_data_uri(data, max_bytes=max_bytes)


def _encode_path(path: str | bytes, max_bytes: int) -> str:
    return encode_data_uri(_read_path(path, max_bytes), max_bytes=max_bytes)


def _encode_stream(stream: Any, max_bytes: int) -> str:
    return encode_data_uri(_read_stream(stream, max_bytes), max_bytes=max_bytes)
