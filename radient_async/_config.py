"""Session settings as frozen values: limits and timeouts.

Retry and poll policies live beside the rules that use them (``_retry``, ``_polling``).
"""

from __future__ import annotations

import attrs

from ._validate import integer, positive_rate, seconds, setting

__all__ = ["Limits", "Timeouts"]

_count = setting(integer(1))
_duration = setting(seconds())


@attrs.frozen(kw_only=True)
class Limits:
    """Caps shared by everything on a session, batch and single calls alike.

    ``jobs``: jobs in flight (submitted and not yet finished; a job waiting on the server costs
    no request or task, so the default fits a batch of 10,000 at full speed); ``requests``: API
    requests in flight; ``downloads``: image downloads in flight; ``max_response_bytes``: the
    largest API response read.
    ``requests_per_second`` (default: none) is a hard ceiling on the API requests the session
    sends, below which its adaptive limiter works: a share of a budget split across processes.
    The connection pool is sized to ``requests + downloads`` so it never silently caps them.
    """

    jobs: int = attrs.field(default=10_000, validator=_count)
    requests: int = attrs.field(default=64, validator=_count)
    downloads: int = attrs.field(default=16, validator=_count)
    max_response_bytes: int = attrs.field(default=64 * 1024 * 1024, validator=_count)
    max_image_bytes: int = attrs.field(default=256 * 1024 * 1024, validator=_count)
    requests_per_second: float | None = attrs.field(
        default=None, validator=attrs.validators.optional(setting(positive_rate))
    )

    @property
    def connections(self) -> int:
        """Pool size large enough for every request and download the limits allow at once."""
        return self.requests + self.downloads


@attrs.frozen(kw_only=True)
class Timeouts:
    """``request``: one API call including all its retries; ``connect``/``read``: one attempt's
    connection setup and silence between bytes; ``download``: one image, retries included.
    An API call's attempt (a small request, a small answer) gets ``connect + read`` for the whole
    exchange instead, so it arms one timer rather than one per chunk; a stalled attempt is then
    dropped and retried within ``request``. Downloads and large uploads time the silence itself.

    Time a call waits behind the session's own traffic (its rate limiter, its slots) does not
    count: a call that has not started cannot have timed out. A job's calls still end by the
    job's deadline (``PollPolicy.timeout`` or the ``timeout=`` given to ``submit``).
    """

    request: float = attrs.field(default=60.0, validator=_duration)
    connect: float = attrs.field(default=10.0, validator=_duration)
    read: float = attrs.field(default=30.0, validator=_duration)
    download: float = attrs.field(default=300.0, validator=_duration)
