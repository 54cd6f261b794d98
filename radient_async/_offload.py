"""Keeping heavy decoding off the event loop: large job answers and large ``data:`` images.

``json.loads`` and ``base64`` hold the GIL for the whole C call, so a worker *thread* stalls the
loop as long as the work takes (a 94 MB answer: 0.4–0.6 s). Two remedies, each measured by
``benchmarks/loop_stall.py``:

- a job answer of ``OFFLOAD_BYTES`` or more is parsed and checked in a child process the session
  owns: started on first need with the same interpreter and package, fed over pipes, ended by
  ``aclose``. It gets the answer already scrubbed of the key, and never the key itself. Should it
  be unavailable or die, the answer is parsed on the loop (correct, only slower);
- a large ``data:`` image is decoded in slices, with a checkpoint between slices.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import pickle
import struct
import subprocess
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_to_bytes

import anyio
import anyio.abc
import anyio.lowlevel

from ._endpoint import HttpResponse
from ._errors import DownloadError, MalformedResponseError
from ._protocol import JobAnswer, read_job

__all__ = ["OFFLOAD_BYTES", "Offload", "decode_data_url"]

OFFLOAD_BYTES = 1024 * 1024  # parsing ~1 MiB of the densest JSON takes ~20 ms
SLICE_CHARS = 1024 * 1024  # a multiple of 4: one slice of base64 decodes in ~6 ms
_HEADER = struct.Struct("<QQ")  # the lengths of the pickled arguments and of the body
_LENGTH = struct.Struct("<Q")
_log = logging.getLogger("radient_async")

# The child runs this package from the folder the parent imported it from, not whatever a fresh
# interpreter would find first.
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_BOOT = (
    "import sys; sys.path.insert(0, {root!r}); from radient_async._offload import serve; serve()"
)


class Offload:
    """A session's decoding worker: lazily started, serving one answer at a time."""

    def __init__(self, threshold: int = OFFLOAD_BYTES) -> None:
        self._threshold = threshold
        self._process: anyio.abc.Process | None = None
        self._lock: anyio.Lock | None = None
        self._unavailable = not sys.executable
        self.offloaded = 0  # answers parsed by the worker (tests count them)

    def read_small_job(
        self, response: HttpResponse, *, request_id: str | None, max_images: int | None
    ) -> JobAnswer | None:
        """``read_job`` of ``response`` right here when it is small enough for the loop; None
        when it is for ``read_job`` (the worker)."""
        if len(response.body) < self._threshold or self._unavailable:
            return read_job(response, request_id=request_id, max_images=max_images)
        return None

    async def read_job(
        self, response: HttpResponse, *, request_id: str | None, max_images: int | None
    ) -> JobAnswer:
        """``read_job`` of ``response``, in the worker when the body is large."""
        small = self.read_small_job(response, request_id=request_id, max_images=max_images)
        if small is not None:
            return small
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            outcome = await self._exchange(response, (request_id, max_images))
        if outcome is None:  # no worker: correct on the loop, only slower
            return read_job(response, request_id=request_id, max_images=max_images)
        kind, value = outcome
        if kind == "error":
            raise value
        self.offloaded += 1
        answer: JobAnswer = value
        return answer

    async def aclose(self) -> None:
        """End the worker: it exits at the end of its input; killed if it lingers."""
        process, self._process = self._process, None
        if process is None:
            return
        with anyio.CancelScope(shield=True):
            if process.stdin is not None:
                await process.stdin.aclose()
            with anyio.move_on_after(2):
                await process.wait()
            if process.returncode is None:
                process.kill()
            await process.aclose()

    async def _exchange(self, response: HttpResponse, args: tuple[Any, ...]) -> Any:
        """Send one answer to the worker and read its verdict; None if the worker failed."""
        try:
            process = await self._started()
            meta = pickle.dumps((response.status, _content_type(response), response.url, *args))
            assert process.stdin is not None
            assert process.stdout is not None
            await process.stdin.send(_HEADER.pack(len(meta), len(response.body)) + meta)
            body = response.body
            for start in range(0, len(body), SLICE_CHARS):
                await process.stdin.send(bytes(body[start : start + SLICE_CHARS]))
            size = _LENGTH.unpack(await _receive(process.stdout, _LENGTH.size))[0]
            # Pickled by our own child from our own types: never bytes a server chose.
            outcome = pickle.loads(await _receive(process.stdout, size))  # noqa: S301
            # Unpickling a 40 MB data: URL takes ~35 ms; what follows (settling the job, freeing
            # the answer) must not add to that stall. One checkpoint would resume this task
            # ahead of the timers that fell due meanwhile; the second lets them run first.
            await anyio.lowlevel.checkpoint()
            await anyio.lowlevel.checkpoint()
        except (OSError, EOFError, pickle.UnpicklingError, anyio.BrokenResourceError) as exc:
            _log.debug("decoding worker failed (%s); parsing on the event loop", exc)
            outcome = None
        except BaseException:  # a cancellation mid-exchange leaves the pipes out of step
            await self.aclose()
            raise
        if outcome is None or outcome[0] == "crash":
            _log.debug("decoding worker unusable (%s); parsing on the event loop", outcome)
            await self.aclose()
            self._unavailable = True
            return None
        return outcome

    async def _started(self) -> anyio.abc.Process:
        if self._process is None or self._process.returncode is not None:
            self._process = await anyio.open_process(
                [sys.executable, "-c", _BOOT.format(root=_PACKAGE_ROOT)],
                stderr=subprocess.DEVNULL,
                env=_child_environment(),
            )
        return self._process


async def _receive(stream: anyio.abc.ByteReceiveStream, size: int) -> bytearray:
    """Exactly ``size`` bytes from ``stream``; ``EOFError`` if it ends first.

    Gathered in place and not copied at the end: a 40 MB copy alone would hold the loop ~30 ms.
    """
    data = bytearray()
    while len(data) < size:
        try:
            data += await stream.receive(min(size - len(data), 1024 * 1024))
        except anyio.EndOfStream:
            raise EOFError("the decoding worker ended") from None
    return data


def _child_environment() -> dict[str, str]:
    """The parent's environment without any ``RADIENT_*`` setting: the worker needs no key."""
    return {name: value for name, value in os.environ.items() if not name.startswith("RADIENT")}


def _content_type(response: HttpResponse) -> str:
    return response.headers.get("Content-Type", "")


def serve() -> None:
    """The worker's loop: read an answer, write back ``("ok", JobAnswer)`` or the error."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head = stdin.read(_HEADER.size)
        if len(head) < _HEADER.size:
            return
        meta_size, body_size = _HEADER.unpack(head)
        status, content_type, url, request_id, max_images = pickle.loads(stdin.read(meta_size))  # noqa: S301
        response = HttpResponse(status, {"Content-Type": content_type}, stdin.read(body_size), url)
        try:
            outcome: tuple[str, Any] = (
                "ok",
                read_job(response, request_id=request_id, max_images=max_images),
            )
        except MalformedResponseError as exc:
            outcome = ("error", exc)
        except Exception as exc:  # reported; the parent then parses on its own loop
            outcome = ("crash", f"{type(exc).__name__}: {exc}")
        data = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
        stdout.write(_LENGTH.pack(len(data)) + data)
        stdout.flush()


# -- data: URLs ----------------------------------------------------------------------------------


async def decode_data_url(url: str, *, max_bytes: int) -> list[bytes]:
    """The bytes of a ``data:`` URL (base64 or percent-encoded), in pieces, or ``DownloadError``.

    Decoded a slice at a time with a checkpoint between slices, and never gathered into one
    buffer here: one call, or one growing buffer's copy, on a 40 MB URL would hold the loop for
    40-250 ms. Whoever needs the bytes whole joins them once.
    """
    comma = url.find(",")
    if comma == -1:
        raise DownloadError("malformed data: URL (no comma)", url=url[:40])
    size = len(url) - comma - 1
    base64_encoded = url[:comma].lower().endswith(";base64")
    padding = url.endswith("=") + url.endswith("==") if base64_encoded else 0
    if (size * 3 // 4 - padding if base64_encoded else size // 3) > max_bytes:
        raise DownloadError(f"data: URL larger than {max_bytes} bytes", url=url[:40])
    pieces: list[bytes] = []
    total = 0
    for piece in data_url_slices(url, comma + 1, base64_encoded=base64_encoded):
        if base64_encoded:
            try:
                pieces.append(base64.b64decode(piece, validate=True))
            except (binascii.Error, ValueError):
                raise DownloadError("data: URL with invalid base64", url=url[:40]) from None
        else:
            pieces.append(unquote_to_bytes(piece))
        total += len(pieces[-1])
        if total > max_bytes:
            raise DownloadError(f"data: URL larger than {max_bytes} bytes", url=url[:40])
        if size > SLICE_CHARS:
            await anyio.lowlevel.checkpoint()
    return pieces


def data_url_slices(
    text: str, start: int, *, base64_encoded: bool, size: int = SLICE_CHARS
) -> Iterator[str]:
    """``text[start:]`` cut where decoding the slices one by one equals decoding it whole.

    Base64 slices are a multiple of 4 characters; a percent-encoded slice ends before a ``%``
    when one falls in its last two characters, so no ``%XX`` escape is split.
    """
    if base64_encoded:
        size = max(4, size - size % 4)
    while start < len(text):
        end = min(start + size, len(text))
        if not base64_encoded and end < len(text):
            escape = text.rfind("%", max(start + 1, end - 2), end)
            end = escape if escape != -1 else end
        yield text[start:end]
        start = end
