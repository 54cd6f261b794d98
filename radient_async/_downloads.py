"""Safe image downloads: streamed, size-checked, atomic, under the session's download cap.

Bytes go to a hidden temporary file beside the target and are renamed into place only when the
transfer is complete and its length matches ``Content-Length``; a failure, a cancel or a crash
leaves no partial file. The API key is sent only to the API's own origin, never to an image host,
and never across a redirect to another host.
File I/O runs in worker threads, never on the event loop.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import BinaryIO, TypeVar
from urllib.parse import unquote_to_bytes, urlsplit

import anyio
import anyio.to_thread

from ._config import Limits, Timeouts
from ._errors import (
    APIConnectionError,
    DownloadError,
    IntegrityError,
    MalformedResponseError,
    RadientError,
)
from ._http import Transport
from ._models import Image
from ._paths import commit_file, discard_file, open_temp_beside
from ._protocol import USER_AGENT, ApiEndpoint, HttpRequest, HttpResponse, redirect_for
from ._retry import RetryPolicy, backoff_delay, parse_retry_after
from ._slots import Slots

__all__ = ["Downloader", "decode_data_url"]

_log = logging.getLogger("radient_async")
_SMALL_BODY = 4 * 1024 * 1024  # announced bodies up to this size are written in one hop
_FLUSH_BYTES = 1024 * 1024  # larger or unannounced bodies spill to disk every MiB
_MAX_REDIRECTS = 5
T = TypeVar("T")


def decode_data_url(url: str, *, max_bytes: int) -> bytes:
    """The bytes of a ``data:`` URL (base64 or percent-encoded), or ``DownloadError``."""
    header, sep, payload = url.partition(",")
    if not sep:
        raise DownloadError("malformed data: URL (no comma)", url=url[:40])
    if len(payload) * 3 // 4 > max_bytes:
        raise DownloadError(f"data: URL larger than {max_bytes} bytes", url=url[:40])
    if header.lower().endswith(";base64"):
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise DownloadError("data: URL with invalid base64", url=url[:40]) from None
    return unquote_to_bytes(payload)


class _Sink:
    """Collects a body in memory, spilling to a temp file beside the target once it is large.

    The target path is resolved inside the first file operation (a worker thread), so an image
    announced as at most ``_SMALL_BODY`` costs one thread hop in all: resolve, write, link into
    place. Larger or unannounced bodies spill every ``_FLUSH_BYTES``, bounding memory per download.
    """

    def __init__(self, destination: tuple[str, str] | None) -> None:
        self.destination = destination  # (the caller's path, the default file name) or in-memory
        self.target: str | None = None
        self.buffer = bytearray()
        self.received = 0
        self.temp: str | None = None
        self.handle: BinaryIO | None = None
        self.flush_at = _FLUSH_BYTES
        self.body: bytes | None = None  # a body read in one piece, kept without copying

    @property
    def to_disk(self) -> bool:
        return self.destination is not None

    def spill(self) -> None:
        """Write the buffer to the temp file (opening it first); runs in a worker thread."""
        if self.handle is None:
            assert self.destination is not None
            self.target = _resolve_target(*self.destination)
            self.temp, self.handle = open_temp_beside(self.target)
        self.handle.write(self.buffer)
        self.buffer.clear()

    def commit(self, overwrite: bool, fsync: bool) -> None:
        """Write what is left and move the file into place; runs in a worker thread."""
        self.spill()
        assert self.temp is not None
        assert self.handle is not None
        assert self.target is not None
        commit_file(self.temp, self.handle, self.target, overwrite=overwrite, fsync=fsync)
        self.handle = None

    def discard(self) -> None:
        """Remove any temp file; runs in a worker thread."""
        if self.handle is not None and self.temp is not None:
            discard_file(self.temp, self.handle)
            self.handle = None


class Downloader:
    """Fetches images for a session; ``Image`` and ``GenerationResult`` delegate here."""

    def __init__(
        self,
        transport: Transport,
        api: ApiEndpoint,
        *,
        limits: Limits,
        timeouts: Timeouts,
        retry: RetryPolicy,
        fsync: bool = False,
    ) -> None:
        self._transport = transport
        self._api = api
        self._limits = limits
        self._timeouts = timeouts
        self._retry = retry
        self._fsync = fsync
        self._slots = Slots(limits.downloads)

    async def read(self, image: Image) -> bytes:
        """The image's bytes, in memory."""
        sink = await self._fetch(image, None)
        return sink.body if sink.body is not None else bytes(sink.buffer)

    async def save(self, image: Image, path: str | os.PathLike[str], *, overwrite: bool) -> str:
        """Download to ``path`` (a directory gets ``image.filename``); returns the final path.

        An existing file is never replaced unless ``overwrite``: the final link fails atomically.
        """
        destination = (os.fspath(path), image.filename)
        try:
            sink = await self._fetch(image, destination, overwrite=overwrite)
        except FileExistsError as exc:
            raise DownloadError(
                f"{exc.filename or destination[0]} already exists (pass overwrite=True to "
                "replace it)"
            ) from None
        except OSError as exc:
            raise DownloadError(f"cannot write {destination[0]}: {exc.strerror or exc}") from None
        assert sink.target is not None
        return sink.target

    async def save_all(
        self, images: tuple[Image, ...], directory: str | os.PathLike[str], *, overwrite: bool
    ) -> list[str]:
        """Download all images into ``directory`` concurrently; paths come back in image order."""
        directory = os.fspath(directory)
        paths: list[str] = [""] * len(images)
        errors: list[RadientError] = []

        async def one(position: int, image: Image) -> None:
            try:
                paths[position] = await self.save(
                    image, os.path.join(directory, image.filename), overwrite=overwrite
                )
            except RadientError as exc:  # first failure wins; the others are cancelled
                errors.append(exc)
                group.cancel_scope.cancel()

        async with anyio.create_task_group() as group:
            for position, image in enumerate(images):
                group.start_soon(one, position, image)
        if errors:
            raise errors[0]
        return paths

    async def _fetch(
        self, image: Image, destination: tuple[str, str] | None, *, overwrite: bool = False
    ) -> _Sink:
        """Fetch ``image`` into a sink (committed to ``destination`` when given), with retries."""
        scheme = urlsplit(image.url).scheme.lower()
        if scheme == "data":
            return await self._from_data_url(image, destination, overwrite)
        if scheme not in ("http", "https"):
            raise DownloadError(
                f"refusing to download a {scheme or 'relative'}: URL", url=image.url
            )
        deadline = time.monotonic() + self._timeouts.download
        try:
            return await self._fetch_with_retries(image, destination, overwrite, deadline)
        except TimeoutError:
            raise DownloadError(
                f"download did not finish within {self._timeouts.download:.0f}s", url=image.url
            ) from None

    async def _fetch_with_retries(
        self, image: Image, destination: tuple[str, str] | None, overwrite: bool, deadline: float
    ) -> _Sink:
        """Attempts until success, a permanent error, the retry budget or the deadline.

        The deadline is passed down (aiohttp's per-attempt total timeout, bounded waits) instead
        of wrapping the download in a cancel scope; running out of time raises ``TimeoutError``.
        """
        attempt = 0
        while True:
            attempt += 1
            sink = _Sink(destination)
            try:
                await self._slots.acquire(_remaining(deadline))
                try:
                    retry_after = await self._stream(image.url, sink, deadline)
                finally:
                    self._slots.release()
                if retry_after is None:
                    if sink.to_disk:
                        await _in_thread(partial(sink.commit, overwrite, self._fsync))
                    return sink
                error: RadientError = DownloadError("server asked to retry", url=image.url)
            except (IntegrityError, APIConnectionError, _Retryable) as exc:
                error, retry_after = _as_download_error(exc, image.url), _retry_after_of(exc)
            finally:
                if sink.handle is not None:
                    await _in_thread(sink.discard, shield=True)
            if attempt > self._retry.max_retries:
                raise error
            delay = retry_after if retry_after is not None else backoff_delay(self._retry, attempt)
            delay = min(delay, self._retry.max_retry_after)
            if time.monotonic() + delay >= deadline:
                raise error
            _log.debug("retrying download of %s in %.2fs: %s", image.url, delay, error)
            await anyio.sleep(delay)

    async def _stream(self, url: str, sink: _Sink, deadline: float) -> float | None:
        """Fetch ``url`` into ``sink``, following safe redirects; returns None when done."""
        request = self._request_for(url)
        for _ in range(_MAX_REDIRECTS + 1):
            if not sink.to_disk:
                follow = await self._read_whole(request, sink, url, deadline)
                if follow is None:
                    return None
                request = follow
                continue
            async with self._transport.stream(request, timeout=_remaining(deadline)) as response:
                head = HttpResponse(response.status, response.headers, b"", request.url)
                follow = redirect_for(request, head, self._api)
                if follow is not None:
                    request = follow
                    continue
                if response.status >= 400:
                    _raise_for_download_status(response.status, head, url, self._retry)
                if response.status != 200:
                    raise DownloadError(f"unexpected HTTP {response.status}", url=url)
                await self._receive(response.chunks(), response.content_length, sink, url)
                return None
        raise DownloadError("too many redirects", url=url)

    async def _read_whole(
        self, request: HttpRequest, sink: _Sink, url: str, deadline: float
    ) -> HttpRequest | None:
        """One-shot read into memory (``image.read()``); returns a redirect to follow, if any."""
        limit = self._limits.max_image_bytes
        try:
            response = await self._transport.send(
                request, max_bytes=limit, timeout=_remaining(deadline)
            )
        except MalformedResponseError as exc:
            raise DownloadError(str(exc), url=url) from None
        follow = redirect_for(request, response, self._api)
        if follow is not None:
            return follow
        if response.status >= 400:
            _raise_for_download_status(response.status, response, url, self._retry)
        if response.status != 200:
            raise DownloadError(f"unexpected HTTP {response.status}", url=url)
        sink.body = response.body
        sink.received = len(response.body)
        return None

    async def _receive(
        self, chunks: AsyncIterator[bytes], expected: int | None, sink: _Sink, url: str
    ) -> None:
        limit = self._limits.max_image_bytes
        if expected is not None and expected > limit:
            raise DownloadError(f"image of {expected} bytes exceeds the {limit} limit", url=url)
        if expected is not None and expected <= _SMALL_BODY:
            sink.flush_at = expected + 1
        try:
            async for chunk in chunks:
                await self._take(chunk, sink, limit, url)
        except APIConnectionError as exc:
            raise IntegrityError(
                f"transfer cut short after {sink.received} of {expected or '?'} bytes ({exc})",
                url=url,
            ) from None
        if expected is not None and sink.received != expected:
            raise IntegrityError(
                f"received {sink.received} of {expected} bytes (transfer cut short)", url=url
            )

    async def _take(self, chunk: bytes, sink: _Sink, limit: int, url: str) -> None:
        """Add one chunk to the sink, enforcing the size cap and spilling large bodies to disk."""
        sink.buffer += chunk
        sink.received += len(chunk)
        if sink.received > limit:
            raise DownloadError(f"image exceeds the {limit} byte limit", url=url)
        if sink.to_disk and len(sink.buffer) >= sink.flush_at:
            await _in_thread(sink.spill)

    def _request_for(self, url: str) -> HttpRequest:
        """A GET that carries the key only when the image lives on the API's own origin."""
        if self._api.is_own_origin(url):
            return HttpRequest("GET", url, self._api.headers({"Accept": "*/*"}))
        return HttpRequest("GET", url, {"User-Agent": USER_AGENT, "Accept": "*/*"})

    async def _from_data_url(
        self, image: Image, destination: tuple[str, str] | None, overwrite: bool
    ) -> _Sink:
        sink = _Sink(destination)
        sink.buffer += decode_data_url(image.url, max_bytes=self._limits.max_image_bytes)
        sink.received = len(sink.buffer)
        if sink.to_disk:
            try:
                await _in_thread(lambda: sink.commit(overwrite, self._fsync))
            finally:
                if sink.handle is not None:
                    await _in_thread(sink.discard, shield=True)
        return sink


def _remaining(deadline: float) -> float:
    """Seconds left before ``deadline``; ``TimeoutError`` once it has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


def _resolve_target(path: str, filename: str) -> str:
    """``path`` itself, or ``path/filename`` when it names a directory."""
    if path.endswith(("/", os.sep)) or os.path.isdir(path):
        return os.path.join(path, filename)
    return path


class _Retryable(Exception):
    """A retryable HTTP status on a download, with the server's requested wait."""

    def __init__(self, status: int, retry_after: float | None, url: str) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after
        self.url = url


def _raise_for_download_status(
    status: int, response: HttpResponse, url: str, retry: RetryPolicy
) -> None:
    if retry.should_retry_status(status):
        raise _Retryable(status, parse_retry_after(response.headers), url)
    raise DownloadError(f"HTTP {status} while downloading", url=url)


def _as_download_error(exc: Exception, url: str) -> RadientError:
    if isinstance(exc, DownloadError):
        return exc
    if isinstance(exc, _Retryable):
        return DownloadError(f"{exc} while downloading", url=url)
    return DownloadError(f"download failed: {exc}", url=url)


def _retry_after_of(exc: Exception) -> float | None:
    return exc.retry_after if isinstance(exc, _Retryable) else None


async def _in_thread(func: Callable[[], T], *, shield: bool = False) -> T:
    """Run blocking file work in a worker thread; shielded work also runs during cancellation."""
    if shield:
        with anyio.CancelScope(shield=True):
            return await anyio.to_thread.run_sync(func)
    return await anyio.to_thread.run_sync(func)
