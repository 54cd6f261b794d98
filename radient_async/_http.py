"""The transport: the only module that uses aiohttp's client.

It sends an ``HttpRequest`` and hands back an ``HttpResponse`` (or a streamed body), translating
aiohttp's exceptions into the SDK's own. It never interprets status codes, never follows redirects
and never adds headers: those decisions belong to the pure protocol and the session.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Mapping
from types import TracebackType

import aiohttp
import anyio.lowlevel
import attrs
from yarl import URL

from ._config import Limits, Timeouts
from ._endpoint import HttpRequest, HttpResponse
from ._errors import (
    APIConnectionError,
    APITimeoutError,
    MalformedResponseError,
    SessionClosedError,
)

__all__ = ["StreamedResponse", "Transport"]

_JOIN_BYTES = 1024 * 1024  # announced bodies up to this are read at once (the common case)
_SMALL_UPLOAD = 64 * 1024  # an API request body up to this is sent in a moment: no read timer


def _describe(request: HttpRequest) -> str:
    return f"{request.method} {request.url}"


def _translate(exc: BaseException, request: HttpRequest) -> Exception:
    """Map an aiohttp/asyncio failure to the SDK error a caller can act on."""
    where = _describe(request)
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return APITimeoutError(f"{where}: timed out waiting for the server")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return APIConnectionError(f"{where}: response body broken off ({exc})")
    if isinstance(exc, aiohttp.ClientResponseError):
        return MalformedResponseError(f"{where}: invalid HTTP response ({exc.message})")
    if isinstance(exc, aiohttp.InvalidURL):
        return APIConnectionError(f"{where}: invalid URL")
    return APIConnectionError(f"{where}: {type(exc).__name__}: {exc}".rstrip(": "))


_FAILURES = (aiohttp.ClientError, asyncio.TimeoutError, OSError)


@attrs.define
class StreamedResponse:
    """A response whose body is still to be read (image downloads); a context manager that
    gives the connection back to the pool on a clean exit and drops it on an error."""

    status: int
    headers: Mapping[str, str]
    content_length: int | None
    _response: aiohttp.ClientResponse = attrs.field(repr=False, alias="response")
    _request: HttpRequest = attrs.field(repr=False, alias="request")

    async def chunks(self, size: int = 256 * 1024) -> AsyncIterator[bytes]:
        """The body, chunk by chunk; a broken transfer raises ``APIConnectionError``."""
        try:
            async for chunk in self._response.content.iter_chunked(size):
                yield chunk
        except _FAILURES as exc:
            raise _translate(exc, self._request) from None

    async def read(self) -> bytes:
        """The whole body at once: for a small announced body, one await instead of a chunk
        loop; a broken transfer raises ``APIConnectionError``."""
        try:
            return await self._response.read()
        except _FAILURES as exc:
            raise _translate(exc, self._request) from None

    def __enter__(self) -> StreamedResponse:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Whatever the block raised (a disk error, a cancellation) passes through untouched.
        if exc_type is None:
            self._response.release()
        else:
            self._response.close()


class Transport:
    """One pooled aiohttp session, opened and closed by the owning ``Session``."""

    def __init__(self, limits: Limits, timeouts: Timeouts) -> None:
        self._limits = limits
        self._timeouts = timeouts
        self._session: aiohttp.ClientSession | None = None
        # The common API attempt's timeouts (the call has more time left than an exchange may
        # take), built once: they are the same for every such attempt.
        self._exchange_seconds = timeouts.connect + timeouts.read
        self._exchange = self._timeout(None, whole=True)

    async def open(self) -> None:
        """Create the connection pool on the running event loop."""
        connector = aiohttp.TCPConnector(
            limit=self._limits.connections, limit_per_host=0, ttl_dns_cache=300
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=None, connect=self._timeouts.connect, sock_read=self._timeouts.read
            ),
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            auto_decompress=True,
        )

    async def close(self) -> None:
        """Close every pooled connection, and let their transports finish closing.

        aiohttp closes transports asynchronously: each completes on a later loop iteration. Without
        these checkpoints a loop that ends right after ``close()`` leaves sockets half-closed.
        """
        session, self._session = self._session, None
        if session is not None:
            await session.close()
            for _ in range(3):
                await anyio.lowlevel.checkpoint()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            raise SessionClosedError("the session is closed; use it inside `async with Session()`")
        return self._session

    def _timeout(self, total: float | None, *, whole: bool = False) -> aiohttp.ClientTimeout:
        """The attempt's timeouts: a connect or read limit the total already enforces is left
        out, so aiohttp arms no timer for it (a poll near its job's deadline, a last retry).

        ``whole``: the exchange gets ``connect + read`` as a whole, on the total timer the
        attempt arms anyway, instead of a read timer re-armed per chunk received.
        """
        connect, read = self._timeouts.connect, self._timeouts.read
        if whole:
            total = connect + read if total is None else min(total, connect + read)
        covered = math.inf if total is None else total  # limits at or past it never fire first
        return aiohttp.ClientTimeout(
            total=total,
            connect=None if connect >= covered else connect,
            sock_read=None if whole or read >= covered else read,
        )

    def _answer_timeout(self, total: float | None, body: bytes | None) -> aiohttp.ClientTimeout:
        """An API call's attempt: small both ways, so timed as a whole (two timers fewer per
        call); a large upload keeps the per-read limit."""
        whole = body is None or len(body) <= _SMALL_UPLOAD
        if whole and (total is None or total >= self._exchange_seconds):
            return self._exchange
        return self._timeout(total, whole=whole)

    async def send(
        self,
        request: HttpRequest,
        *,
        max_bytes: int,
        timeout: float | None = None,
        sent_at: float = 0.0,
    ) -> HttpResponse:
        """Send one request and read the whole response body, refusing more than ``max_bytes``.

        ``timeout`` bounds the whole attempt (the caller passes what is left of its deadline);
        ``sent_at`` (the caller's clock reading as it sends) is stamped on the response.
        """
        client = self._client()
        try:
            async with client.request(
                request.method,
                URL(request.url, encoded=True),
                headers=request.headers,
                data=request.body,
                allow_redirects=False,
                timeout=self._answer_timeout(timeout, request.body),
            ) as response:
                length = _decoded_length(response)
                body: bytes | bytearray
                if length is not None and length <= _JOIN_BYTES and length <= max_bytes:
                    body = await response.read()  # the common case: small and announced
                else:
                    body = await _read_capped(response, length, max_bytes, request)
                return HttpResponse(response.status, response.headers, body, request.url, sent_at)
        except _FAILURES as exc:
            raise _translate(exc, request) from None

    async def stream(
        self, request: HttpRequest, *, timeout: float | None = None
    ) -> StreamedResponse:
        """Send a GET and return the response with its body still to be read; use it as a
        ``with`` block, which releases the connection (or drops it, on an error).

        Only failures of the request itself are translated here.
        """
        client = self._client()
        try:
            response = await client.request(
                request.method,
                URL(request.url, encoded=True),
                headers=request.headers,
                allow_redirects=False,
                timeout=self._timeout(timeout),
            )
        except _FAILURES as exc:
            raise _translate(exc, request) from None
        return StreamedResponse(
            response.status,
            response.headers,
            _decoded_length(response),
            response=response,
            request=request,
        )


def _decoded_length(response: aiohttp.ClientResponse) -> int | None:
    """The body's length once decoded, when known: ``Content-Length`` counts encoded bytes."""
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    return response.content_length if encoding in ("", "identity") else None


async def _read_capped(
    response: aiohttp.ClientResponse, length: int | None, max_bytes: int, request: HttpRequest
) -> bytes | bytearray:
    """The decoded body of a large or unannounced response, or ``MalformedResponseError`` once
    it exceeds ``max_bytes`` (a small announced one is read at once by ``Transport.send``).

    The cap counts decoded bytes: a small gzip body may inflate a thousandfold. A large body is
    gathered chunk by chunk in one growing buffer: joining it at the end would stall the loop.
    ``length`` is the decoded length the response announced, if any.
    """
    if length is not None and length > max_bytes:
        raise MalformedResponseError(
            f"{_describe(request)}: response of {length} bytes exceeds the {max_bytes} limit",
            status=response.status,
        )
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > max_bytes:
            raise MalformedResponseError(
                f"{_describe(request)}: response exceeds the {max_bytes} byte limit",
                status=response.status,
            )
    # Not copied into ``bytes``: a 90 MB copy holds the event loop for ~70 ms.
    return body
