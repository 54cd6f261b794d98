"""Image-to-image inputs: turn what the caller has into the ``source_url`` the API takes.

Accepts an http(s) URL or ``data:`` URI (checked, passed through), a file path, bytes, a binary file
object or a PIL image (sent as a base64 ``data:`` URI). The MIME type is sniffed from the bytes,
never trusted from a file name; only PNG, JPEG, GIF and WebP are accepted, within a size limit.
Files are read in a worker thread so the event loop never blocks on disk.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
from typing import IO, Any, Union
from urllib.parse import urlsplit

import anyio.to_thread

from ._errors import ValidationError

__all__ = [
    "DEFAULT_MAX_SOURCE_BYTES",
    "SourceInput",
    "encode_data_uri",
    "resolve_source",
    "sniff_image_type",
    "validate_source_url",
]

DEFAULT_MAX_SOURCE_BYTES = 20 * 1024 * 1024
_FIELD = "source"
_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")

SourceInput = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes], Any]


def sniff_image_type(data: bytes) -> str | None:
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


def _too_large(size: int, max_bytes: int) -> ValidationError:
    return ValidationError(_FIELD, f"image of {size} bytes exceeds the {max_bytes} byte limit")


def encode_data_uri(data: bytes, *, max_bytes: int = DEFAULT_MAX_SOURCE_BYTES) -> str:
    """``data:<sniffed type>;base64,...`` for image bytes; anything else is a ValidationError."""
    if not data:
        raise ValidationError(_FIELD, "the image is empty")
    if len(data) > max_bytes:
        raise _too_large(len(data), max_bytes)
    mime = sniff_image_type(data)
    if mime is None:
        raise ValidationError(_FIELD, "not a PNG, JPEG, GIF or WebP image")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def validate_source_url(value: str, *, max_bytes: int = DEFAULT_MAX_SOURCE_BYTES) -> str:
    """Check a URL source: http(s) with a host, or an image ``data:`` URI; returns it unchanged."""
    if not isinstance(value, str):
        raise ValidationError(_FIELD, f"must be a URL string, got {type(value).__name__}")
    if value[:5].lower() == "data:":
        _check_data_uri(value, max_bytes)
        return value
    if any(ch.isspace() or ord(ch) < 32 for ch in value):
        raise ValidationError(_FIELD, "URL contains whitespace or control characters")
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValidationError(_FIELD, "malformed URL") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValidationError(_FIELD, f"only http(s) URLs or data: URIs, not {parts.scheme!r}")
    if not host:
        raise ValidationError(_FIELD, "URL has no host")
    if parts.username or parts.password:
        raise ValidationError(_FIELD, "URL must not embed credentials")
    return value


def _check_data_uri(value: str, max_bytes: int) -> None:
    header, comma, payload = value[5:].partition(",")
    if not comma:
        raise ValidationError(_FIELD, "malformed data: URI (no comma)")
    params = [p.strip().lower() for p in header.split(";")]
    if "base64" not in params[1:]:
        raise ValidationError(_FIELD, "data: URI must be base64-encoded")
    declared = params[0]
    if declared not in _TYPES:
        raise ValidationError(_FIELD, f"data: URI type {declared or 'missing'!r} is not an image")
    if len(payload) * 3 // 4 > max_bytes + 3:
        raise _too_large(len(payload) * 3 // 4, max_bytes)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(_FIELD, "data: URI has invalid base64") from None
    if len(data) > max_bytes:
        raise _too_large(len(data), max_bytes)
    sniffed = sniff_image_type(data)
    if sniffed is None:
        raise ValidationError(_FIELD, "data: URI does not contain a PNG, JPEG, GIF or WebP image")
    if sniffed != declared:
        raise ValidationError(_FIELD, f"data: URI says {declared} but holds {sniffed}")


def _looks_like_url(text: str) -> bool:
    lowered = text[:8].lower()
    return lowered.startswith(("http://", "https://", "data:")) or "://" in text[:32]


def _read_path(path: str, max_bytes: int) -> bytes:
    """Read a file after checking it is a regular file within the limit (worker thread)."""
    try:
        info = os.stat(path)
        if not os.path.isfile(path):
            raise ValidationError(_FIELD, f"{path!r} is not a regular file")
        if info.st_size > max_bytes:
            raise _too_large(info.st_size, max_bytes)
        with open(path, "rb") as handle:
            return handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise ValidationError(_FIELD, f"no such file: {path!r}") from None
    except PermissionError:
        raise ValidationError(_FIELD, f"cannot read {path!r}: permission denied") from None
    except OSError as exc:
        raise ValidationError(_FIELD, f"cannot read {path!r}: {exc.strerror or exc}") from None


def _read_stream(stream: Any, max_bytes: int) -> bytes:
    data = stream.read(max_bytes + 1)
    if isinstance(data, str):
        raise ValidationError(_FIELD, "file object is in text mode; open it with 'rb'")
    if not isinstance(data, (bytes, bytearray)):
        raise ValidationError(_FIELD, "file object's read() did not return bytes")
    return bytes(data)


def _encode_pil(image: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _is_pil_image(value: object) -> bool:
    return all(hasattr(value, name) for name in ("save", "mode", "size")) and not hasattr(
        value, "read"
    )


async def resolve_source(source: SourceInput, *, max_bytes: int = DEFAULT_MAX_SOURCE_BYTES) -> str:
    """The ``source_url`` for any supported input (see the module docstring)."""
    if isinstance(source, str):
        if _looks_like_url(source):
            return validate_source_url(source, max_bytes=max_bytes)
        data = await anyio.to_thread.run_sync(_read_path, source, max_bytes)
    elif isinstance(source, os.PathLike):
        data = await anyio.to_thread.run_sync(_read_path, os.fspath(source), max_bytes)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif hasattr(source, "read"):
        data = await anyio.to_thread.run_sync(_read_stream, source, max_bytes)
    elif _is_pil_image(source):
        data = await anyio.to_thread.run_sync(_encode_pil, source)
    else:
        raise ValidationError(
            _FIELD, f"expected a path, bytes, file, PIL image or URL, not {type(source).__name__}"
        )
    return encode_data_uri(data, max_bytes=max_bytes)
