"""Safe image downloads: streamed, size-checked, atomic, under the session's download cap.

Bytes go to a hidden temporary file beside the target and are renamed into place only when the
transfer is complete and its length matches ``Content-Length``; a failure, a cancel or a crash
leaves no partial file. The API key is sent only to the API's own origin, never to an image host,
and never across a redirect to another host.
File I/O runs in the session's worker threads (``FileWorker``), never on the event loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from typing import BinaryIO, TypeVar

import anyio

from ._calls import Calls
from ._config import Limits, Timeouts
from ._endpoint import USER_AGENT, ApiEndpoint, HttpRequest, parse_url
from ._errors import APIConnectionError, DownloadError, IntegrityError, RadientError
from ._file_worker import FileWorker
from ._http import StreamedResponse
from ._models import Image, extension_for
from ._offload import decode_data_url
from ._paths import commit_file, discard_file, open_temp_beside
from ._sources import TRAILER_BYTES, image_is_complete, sniff_image_type

__all__ = ["Downloader"]

_SMALL_BODY = 4 * 1024 * 1024  # announced bodies up to this size are written in one hop
_ONE_READ = 64 * 1024  # announced bodies up to this are read in one await, even for disk
_FLUSH_BYTES = 1024 * 1024  # larger or unannounced bodies spill to disk every MiB
_MAGIC_BYTES = 12  # enough of a body to tell PNG, JPEG, GIF and WebP apart
_PREVIEW_BYTES = 16  # the first bytes kept: the magic, and what an error shows of a non-image
T = TypeVar("T")


class _Sink:
    """Collects a body in memory, spilling to a temp file beside the target once it is large.

    Chunks are kept as they arrive, never copied into one buffer: a spill writes them as they
    are, and only ``read()`` joins them (once). The target path is resolved inside the first
    file operation (a worker thread), so an image announced as at most ``_SMALL_BODY`` costs one
    thread hop in all: resolve, write, link into place. Larger or unannounced bodies spill every
    ``_FLUSH_BYTES``, bounding memory per download.
    """

    def __init__(self, destination: tuple[str, str] | None) -> None:
        self.destination = destination  # (the caller's path, the default file name) or in-memory
        self.target: str | None = None
        self.chunks: list[bytes | bytearray] = []
        self.buffered = 0  # bytes in ``chunks``
        self.received = 0
        self.temp: str | None = None
        self.handle: BinaryIO | None = None
        self.flush_at = _FLUSH_BYTES
        self.mime: str | None = None  # the type the first bytes show, once sniffed
        self.head = b""  # the first _PREVIEW_BYTES
        self.tail = b""  # the last TRAILER_BYTES

    def add(self, chunk: bytes | bytearray) -> None:
        """Take one chunk of the body, keeping its first and last bytes for the checks."""
        self.chunks.append(chunk)
        self.buffered += len(chunk)
        self.received += len(chunk)
        if len(self.head) < _PREVIEW_BYTES:
            self.head += chunk[: _PREVIEW_BYTES - len(self.head)]
        self.tail = (self.tail + chunk[-TRAILER_BYTES:])[-TRAILER_BYTES:]

    def body(self) -> bytes:
        """The whole body, for a read into memory: the one copy of a large body (~1 ms/MB)."""
        if len(self.chunks) == 1 and isinstance(self.chunks[0], bytes):
            return self.chunks[0]
        return b"".join(self.chunks)

    @property
    def sniffed(self) -> bool:
        return self.mime is not None

    def sniff(self, url: str) -> None:
        """Refuse a body that is not an image; name the file by the type its bytes show."""
        mime = sniff_image_type(self.head[:_MAGIC_BYTES])
        if mime is None:
            raise DownloadError(f"not a PNG, JPEG, GIF or WebP image: {self.head!r}", url=url)
        self.mime = mime
        if self.destination is not None:
            path, name = self.destination
            self.destination = (path, os.path.splitext(name)[0] + extension_for(mime))

    def ends_whole(self) -> bool:
        """Whether the body received ends as its sniffed format ends (no length was announced)."""
        assert self.mime is not None
        return image_is_complete(self.mime, self.head, self.tail, self.received)

    @property
    def to_disk(self) -> bool:
        return self.destination is not None

    def spill(self) -> None:
        """Write the buffer to the temp file (opening it first); runs in a worker thread."""
        if self.handle is None:
            assert self.destination is not None
            self.target = _resolve_target(*self.destination)
            self.temp, self.handle = open_temp_beside(self.target)
        self.handle.writelines(self.chunks)
        self.chunks.clear()
        self.buffered = 0

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
    """Fetches images for a session through its ``Calls``; ``Image`` and results delegate here."""

    def __init__(
        self,
        calls: Calls,
        api: ApiEndpoint,
        *,
        limits: Limits,
        timeouts: Timeouts,
        fsync: bool,
        worker: FileWorker,
    ) -> None:
        self._calls = calls
        self._worker = worker
        self._api = api
        self._limits = limits
        self._timeouts = timeouts
        self._fsync = fsync
        # Built once: every download of an image on the API's own origin sends these.
        self._own_headers = api.headers({"Accept": "*/*"})

    async def read(self, image: Image) -> bytes:
        """The image's bytes, in memory."""
        sink = await self._fetch(image, None)
        return sink.body()

    async def save(self, image: Image, path: str | os.PathLike[str], *, overwrite: bool) -> str:
        """Download to ``path`` (a directory gets ``image.filename``); returns the final path.

        An existing file is never replaced unless ``overwrite``: the final link fails atomically.
        """
        return (await self._save(image, os.fspath(path), overwrite))[0]

    async def save_all(
        self, images: tuple[Image, ...], directory: str | os.PathLike[str], *, overwrite: bool
    ) -> list[str]:
        """Download all images into ``directory`` concurrently; paths come back in image order."""
        return [path for path, _ in await self.save_files(images, directory, overwrite=overwrite)]

    async def save_files(
        self, images: tuple[Image, ...], directory: str | os.PathLike[str], *, overwrite: bool
    ) -> list[tuple[str, int]]:
        """``save_all``, with each file's size as the download counted it (no ``stat`` after)."""
        folder = os.path.join(os.fspath(directory), "")  # named by the type the bytes show
        if len(images) == 1:  # the common case needs no task group (~40 µs of CPU per job)
            return [await self._save(images[0], folder, overwrite)]
        saved: list[tuple[str, int]] = [("", 0)] * len(images)
        errors: list[RadientError] = []

        async def one(position: int, image: Image) -> None:
            try:
                saved[position] = await self._save(image, folder, overwrite)
            except RadientError as exc:  # first failure wins; the others are cancelled
                errors.append(exc)
                group.cancel_scope.cancel()

        async with anyio.create_task_group() as group:
            for position, image in enumerate(images):
                group.start_soon(one, position, image)
        if errors:
            raise errors[0]
        return saved

    async def _save(self, image: Image, path: str, overwrite: bool) -> tuple[str, int]:
        destination = (path, image.filename)
        try:
            sink = await self._fetch(image, destination, overwrite=overwrite)
        except FileExistsError as exc:
            raise DownloadError(
                f"{exc.filename or path} already exists", remedy="overwrite"
            ) from None
        except OSError as exc:
            raise DownloadError(f"cannot write {path}: {exc.strerror or exc}") from None
        assert sink.target is not None
        return sink.target, sink.received

    async def _fetch(
        self, image: Image, destination: tuple[str, str] | None, *, overwrite: bool = False
    ) -> _Sink:
        """Fetch ``image`` into a sink (committed to ``destination`` when given), with retries."""
        url = image.url
        if url[:5].lower() == "data:":  # not split: urlsplit of a 40 MB data: URL costs ~0.1 s
            return await self._from_data_url(image, destination, overwrite)
        if not self._api.starts_own_url(url):  # the API's own URLs need no parsing
            _check_image_url(url)

        async def handler(hop: HttpRequest, response: StreamedResponse) -> _Sink:
            if response.status != 200:
                raise DownloadError(f"HTTP {response.status} while downloading", url=url)
            sink = _Sink(destination)
            try:
                await self._receive(response, sink, url)
                if sink.to_disk:
                    await self._in_thread(partial(sink.commit, overwrite, self._fsync))
            finally:
                if sink.handle is not None:
                    await self._in_thread(sink.discard, shield=True)
            return sink

        deadline = self._calls.deadline_in(self._timeouts.download)
        try:
            return await self._calls.stream(
                self._request_for(url), deadline=deadline, handler=handler
            )
        except DownloadError:
            raise
        except RadientError as exc:
            raise DownloadError(f"download failed: {exc}", url=url) from exc

    async def _receive(self, response: StreamedResponse, sink: _Sink, url: str) -> None:
        """Read the body into ``sink``, checking its size, its type and that it is whole.

        An announced body read into memory, or a small one, is read in one await (no chunk
        loop); one for disk chunk by chunk, so its chunks are written as they came, never
        joined into one copy first, and spilled to disk as it goes.
        """
        limit, expected = self._limits.max_image_bytes, response.content_length
        if expected is not None and expected > limit:
            raise DownloadError(f"image of {expected} bytes exceeds the {limit} limit", url=url)
        try:
            if expected is not None and expected <= _SMALL_BODY:
                sink.flush_at = expected + 1
            if expected is not None and (expected <= _ONE_READ or not sink.to_disk):
                body = await response.read()
                self._take(body, sink, limit, url)  # never spills: flush_at is past the body
            else:
                async for chunk in response.chunks():
                    if self._take(chunk, sink, limit, url):
                        await self._in_thread(sink.spill)
        except APIConnectionError as exc:
            raise IntegrityError(
                f"transfer cut short after {sink.received} of {expected or '?'} bytes ({exc})",
                url=url,
            ) from None
        self._check_whole(sink, expected, url)

    @staticmethod
    def _check_whole(sink: _Sink, expected: int | None, url: str) -> None:
        """Refuse a body shorter than announced, not an image, or (unannounced) cut short."""
        if expected is not None and sink.received != expected:
            raise IntegrityError(
                f"received {sink.received} of {expected} bytes (transfer cut short)", url=url
            )
        if not sink.sniffed:
            sink.sniff(url)  # a body shorter than the longest magic number
        if expected is None and not sink.ends_whole():
            raise IntegrityError(
                f"{sink.mime} of {sink.received} bytes ends before its format's end "
                "(transfer cut short)",
                url=url,
            )

    @staticmethod
    def _take(chunk: bytes, sink: _Sink, limit: int, url: str) -> bool:
        """Add one chunk to the sink, enforcing the size cap; True when the sink should spill
        to disk now (a large body bound for a file)."""
        sink.add(chunk)
        if sink.received > limit:
            raise DownloadError(f"image exceeds the {limit} byte limit", url=url)
        if not sink.sniffed and sink.received >= _MAGIC_BYTES:
            sink.sniff(url)  # before the first byte can reach the disk
        return sink.to_disk and sink.buffered >= sink.flush_at

    def _request_for(self, url: str) -> HttpRequest:
        """A GET that carries the key only when the image lives on the API's own origin."""
        if self._api.is_own_origin(url):
            return HttpRequest("GET", url, self._own_headers)
        return HttpRequest("GET", url, {"User-Agent": USER_AGENT, "Accept": "*/*"})

    async def _from_data_url(
        self, image: Image, destination: tuple[str, str] | None, overwrite: bool
    ) -> _Sink:
        sink = _Sink(destination)
        for piece in await decode_data_url(image.url, max_bytes=self._limits.max_image_bytes):
            sink.add(piece)
        sink.sniff(image.url[:40])
        if sink.to_disk:
            try:
                await self._in_thread(partial(sink.commit, overwrite, self._fsync))
            finally:
                if sink.handle is not None:
                    await self._in_thread(sink.discard, shield=True)
        return sink

    async def _in_thread(self, func: Callable[[], T], *, shield: bool = False) -> T:
        """Run blocking file work in the session's worker; shielded work also runs during
        cancellation (a cleanup)."""
        if shield:
            with anyio.CancelScope(shield=True):
                return await self._worker.run(func)
        return await self._worker.run(func)


def _check_image_url(url: str) -> None:
    """Refuse an image URL that is malformed, carries credentials or is not http(s)."""
    parts = parse_url(url)
    scheme = parts.scheme.lower() if parts is not None else ""
    if parts is None or parts.username is not None or parts.password is not None:
        raise DownloadError("refusing to download a malformed URL", url=url)
    if scheme not in ("http", "https"):
        raise DownloadError(f"refusing to download a {scheme or 'relative'}: URL", url=url)


def _resolve_target(path: str, filename: str) -> str:
    """``path`` itself, or ``path/filename`` when it names a directory."""
    if path.endswith(("/", os.sep)) or os.path.isdir(path):
        return os.path.join(path, filename)
    return path
