"""Where the API lives and what travels to it: the endpoint, its key, and request values.

``ApiEndpoint`` checks the base URL and key once and is the one place that knows which URLs may
receive the key (its own origin, never another host). ``HttpRequest`` and ``HttpResponse`` are
the plain values the call engine sends and reads. Pure: no I/O here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import SplitResult, urlsplit

import attrs
from multidict import CIMultiDict

from ._errors import ConfigurationError
from ._version import __version__

__all__ = [
    "USER_AGENT",
    "ApiEndpoint",
    "HttpRequest",
    "HttpResponse",
    "Secret",
    "is_loopback_host",
    "origin_of",
    "parse_url",
]

USER_AGENT = f"radient-async/{__version__}"


class Secret(str):
    """A string whose ``repr`` hides it: the API key and its header travel as this.

    Reprs are what tracebacks with locals, debuggers and error reprs (aiohttp's ``RequestInfo``
    included) print; the transport writes the real value, which ``str()`` and formatting give.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "'***'"


@attrs.frozen
class HttpRequest:
    """One HTTP request to send; headers are hidden from ``repr`` because they carry the key."""

    method: str
    url: str
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    body: bytes | None = attrs.field(default=None, repr=False)


@attrs.frozen
class HttpResponse:
    """A fully read HTTP response."""

    status: int
    headers: Mapping[str, str] = attrs.field(repr=False)
    body: bytes | bytearray = attrs.field(repr=False)  # large bodies stay in their read buffer
    url: str = ""
    sent_at: float = attrs.field(default=0.0, eq=False)  # session clock, as the request left


def parse_url(url: str) -> SplitResult | None:
    """``url`` split into parts, or None when it cannot be (a bad port, a broken IPv6 literal)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is what validates it
    except ValueError:
        return None
    return parts


def origin_of(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with default ports filled in: the unit of trust for the API key.

    An unparseable URL has no origin (``("", "", None)``), so it is never the API's.
    """
    parts = parse_url(url)
    if parts is None:
        return "", "", None
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@attrs.frozen
class ApiEndpoint:
    """Where the API lives and how to authenticate: the pure half of a session's configuration."""

    base_url: str
    _api_key: str = attrs.field(repr=False, alias="api_key", converter=Secret)
    origin: tuple[str, str, int | None] = attrs.field(init=False, repr=False)
    _prefix: str = attrs.field(init=False, repr=False)
    _headers: Mapping[str, str] = attrs.field(init=False, repr=False)

    @classmethod
    def create(cls, base_url: str, api_key: str, *, allow_insecure_http: bool) -> ApiEndpoint:
        """Check the base URL and the key, refusing to send a key over plain http off loopback."""
        if isinstance(api_key, str):
            api_key = Secret(api_key)  # this frame's locals show up in tracebacks too
        if not isinstance(base_url, str):
            raise ConfigurationError(f"base_url must be a string, got {type(base_url).__name__}")
        parts = parse_url(base_url.strip())
        if parts is None:
            raise ConfigurationError(f"base_url has a malformed host or port: {base_url!r}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(f"base_url must be an http(s) URL, got {base_url!r}")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ConfigurationError("base_url must not contain credentials, a query or fragment")
        if not isinstance(api_key, str) or not api_key.strip():
            raise ConfigurationError("api_key must be a non-empty string")
        if not all("!" <= char <= "~" for char in api_key):  # what an HTTP header can carry
            raise ConfigurationError(
                "api_key must be printable ASCII without spaces or control characters"
            )
        if (
            parts.scheme == "http"
            and not is_loopback_host(parts.hostname)
            and not allow_insecure_http
        ):
            raise ConfigurationError(
                f"refusing to send the API key over plain http to {parts.hostname}",
                remedy="https",
            )
        return cls(base_url.strip().rstrip("/"), api_key)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "origin", origin_of(self.base_url))
        parts = urlsplit(self.base_url)
        object.__setattr__(self, "_prefix", f"{parts.scheme}://{parts.netloc}/")
        headers = {
            "Authorization": Secret(f"Bearer {self._api_key}"),
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        object.__setattr__(self, "_headers", headers)

    def headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Request headers for the API's own origin, the only place the key is ever sent."""
        headers = dict(self._headers)
        if extra:
            headers.update(extra)
        return headers

    def redact(self, text: str) -> str:
        """Remove the API key from text that may echo it (a hostile or buggy server's body).

        Keys shorter than 6 characters (test keys) are left alone: replacing them would mangle
        unrelated words without protecting anything.
        """
        key = self._api_key
        return text.replace(key, "***") if len(key) >= 6 and key in text else text

    def scrub(self, response: HttpResponse) -> HttpResponse:
        """``response`` with the key cut out of its body and headers, should a server echo it.

        Applied to every API answer before anything reads it, so no id, status, URL, message or
        field built from the answer can carry the key on into errors, reprs, logs or manifests.
        """
        key = self._api_key
        if len(key) < 6:
            return response
        raw = key.encode()
        echoed = raw in response.body
        if not echoed and key not in "\n".join(response.headers.values()):
            return response
        headers = CIMultiDict(
            (name, value.replace(key, "***")) for name, value in response.headers.items()
        )
        body = response.body.replace(raw, b"***") if echoed else response.body
        return HttpResponse(response.status, headers, body, response.url, response.sent_at)

    def is_own_origin(self, url: str) -> bool:
        """True when ``url`` is on the API's origin, so it may receive the key."""
        if url.startswith(self._prefix):  # the common case, without parsing
            return True
        return origin_of(url) == self.origin

    def starts_own_url(self, url: str) -> bool:
        """True when ``url`` begins with the API's ``scheme://host:port/``: its scheme and
        authority are the API's own (checked once, at construction), so it needs no parsing."""
        return url.startswith(self._prefix)
