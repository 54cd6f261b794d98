"""Image-to-image inputs: ``data:`` URIs and http(s) URLs, decoded and verified with Pillow.

SSRF stance: an http(s) ``source_url`` is fetched only from loopback hosts (``localhost``,
127.0.0.0/8, ``::1``) unless ``allow_remote_sources`` is set; never following redirects, with a
timeout and a size limit. Each source is kept as a small RGB thumbnail shared by every job that uses
the same bytes (a weak cache: it lives exactly as long as some job holds it).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
import weakref
from urllib.parse import urlsplit

import aiohttp
import attrs
from PIL import Image

from radient_async._endpoint import is_loopback_host

from ._responses import ApiError

__all__ = ["SourceImage", "SourceLoader", "decode_image", "read_data_uri"]

FIELD = "source_url"
THUMBNAIL = 256
"""The largest side a source is kept at; bounds the memory an image-to-image job holds."""
MAX_PIXELS = 50_000_000
_FORMATS = frozenset({"PNG", "JPEG", "GIF", "WEBP"})
_OFFLOAD_BYTES = 256 * 1024  # decode bigger inputs in a worker thread, off the event loop


@attrs.frozen(eq=False)
class SourceImage:
    """A decoded source: its content digest (part of the render key) and an RGB thumbnail."""

    digest: str
    picture: Image.Image


def _invalid(message: str, *, status: int = 422, code: str = "invalid_source") -> ApiError:
    return ApiError(message, field=FIELD, status=status, code=code)


def read_data_uri(value: str, max_bytes: int) -> bytes:
    """The bytes of a base64 ``data:image/...`` URI, or a 4xx naming ``source_url``."""
    header, comma, payload = value[5:].partition(",")
    params = [part.strip().lower() for part in header.split(";")]
    if not comma or "base64" not in params[1:]:
        raise _invalid("source_url data: URI must be base64 encoded (data:image/png;base64,...)")
    mime = params[0]
    if mime and not mime.startswith("image/"):
        raise _invalid(f"source_url data: URI must hold an image, not {mime!r}")
    if (len(payload) * 3) // 4 > max_bytes + 3:
        raise _invalid(
            f"source_url image is larger than {max_bytes} bytes", status=413, code="too_large"
        )
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid("source_url data: URI has invalid base64") from None
    if not data:
        raise _invalid("source_url data: URI is empty")
    return data


def decode_image(data: bytes) -> SourceImage:
    """Verify ``data`` is a PNG, JPEG, GIF or WebP image and keep a small RGB thumbnail of it."""
    try:
        picture = Image.open(io.BytesIO(data))
        if picture.format not in _FORMATS:
            raise _invalid("source_url must be a PNG, JPEG, GIF or WebP image")
        width, height = picture.size
        if width * height > MAX_PIXELS:
            raise _invalid(f"source_url image has more than {MAX_PIXELS} pixels", code="too_large")
        picture.draft("RGB", (THUMBNAIL, THUMBNAIL))
        picture.load()
        thumbnail = picture.convert("RGB")
        thumbnail.thumbnail((THUMBNAIL, THUMBNAIL))
    except ApiError:
        raise
    except Exception:  # untrusted bytes through a third-party decoder: any failure is the input's
        raise _invalid("source_url is not a readable image") from None
    return SourceImage(_digest(data), thumbnail)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:24]


class SourceLoader:
    """Turns a ``source_url`` into a ``SourceImage``; owns the HTTP client used for URLs."""

    def __init__(self, *, max_bytes: int, timeout: float, allow_remote: bool) -> None:
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.allow_remote = allow_remote
        self._client: aiohttp.ClientSession | None = None
        self._decoded: weakref.WeakValueDictionary[str, SourceImage] = weakref.WeakValueDictionary()

    async def open(self) -> None:
        """Create the HTTP client (on the server's loop)."""
        self._client = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
        )

    async def close(self) -> None:
        """Close the HTTP client."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def load(self, url: str) -> SourceImage:
        """The image at ``url`` (``data:`` or http(s)); else a 4xx ``ApiError``."""
        if url[:5].lower() != "data:":
            data = await self._fetch(url)
        elif len(url) > _OFFLOAD_BYTES:
            data = await asyncio.to_thread(read_data_uri, url, self.max_bytes)
        else:
            data = read_data_uri(url, self.max_bytes)
        big = len(data) > _OFFLOAD_BYTES
        digest = await asyncio.to_thread(_digest, data) if big else _digest(data)
        known = self._decoded.get(digest)
        if known is not None:
            return known
        source = await asyncio.to_thread(decode_image, data) if big else decode_image(data)
        self._decoded[source.digest] = source
        return source

    def _check_host(self, url: str) -> None:
        try:
            parts = urlsplit(url)
            host = parts.hostname
            _ = parts.port  # raises ValueError on a malformed port
        except ValueError:
            raise _invalid("source_url is not a valid URL") from None
        if parts.scheme.lower() not in ("http", "https") or not host:
            raise _invalid("source_url must be an http(s) URL or a data: URI", code="scheme")
        if not self.allow_remote and not is_loopback_host(host.lower()):
            raise _invalid(
                "source_url: this server fetches only loopback hosts (localhost, 127.0.0.0/8, "
                "::1); send a data: URI, or start it with allow_remote_sources",
                code="forbidden_host",
            )

    async def _fetch(self, url: str) -> bytes:
        self._check_host(url)
        if self._client is None:
            raise RuntimeError("SourceLoader.open() was not called")
        limit = self.max_bytes
        try:
            async with self._client.get(url, allow_redirects=False) as response:
                if response.status != 200:
                    raise _invalid(f"source_url answered HTTP {response.status}", code="fetch")
                if (response.content_length or 0) > limit:
                    raise _invalid(
                        f"source_url image is larger than {limit} bytes",
                        status=413,
                        code="too_large",
                    )
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.content.iter_chunked(64 * 1024):
                    size += len(chunk)
                    if size > limit:
                        raise _invalid(
                            f"source_url image is larger than {limit} bytes",
                            status=413,
                            code="too_large",
                        )
                    chunks.append(chunk)
        except ApiError:
            raise
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            reason = type(exc).__name__
            raise _invalid(f"source_url could not be fetched ({reason})", code="fetch") from None
        return b"".join(chunks)
