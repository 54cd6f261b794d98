"""The exception tree: every failure the SDK reports is one of these types.

::

    RadientError
    ├── ValidationError (also ValueError)      bad input, raised before any network call
    ├── ConfigurationError (also ValueError)   no key, a bad base URL, insecure http
    ├── SessionClosedError (also RuntimeError) the session is closed or not yet opened
    ├── APIError                               the API answered with an error status
    │   ├── BadRequestError                    400, 413, 422
    │   ├── AuthenticationError                401
    │   ├── PermissionDeniedError              403
    │   ├── NotFoundError                      404
    │   ├── ConflictError                      409
    │   ├── RateLimitError                     429 (``retry_after`` in seconds)
    │   └── ServerError                        5xx
    ├── APIConnectionError                     could not reach the API, or the connection broke
    │   └── APITimeoutError (also TimeoutError) a call's overall deadline passed
    ├── MalformedResponseError                 a response that is not the documented JSON
    ├── JobError                               a job did not produce images
    │   ├── JobFailed                          the server said FAILED (``error``: its reason)
    │   ├── JobTimeout (also TimeoutError)     the job's deadline passed while it was still running
    │   ├── JobCancelled                       the handle was cancelled, or its session closed
    │   └── UnexpectedStatusError              the server kept reporting a status we do not know
    └── DownloadError                          an image could not be fetched or saved
        └── IntegrityError                     the bytes received do not match what was announced

Messages are always informative and never contain the API key: they are built from status codes, the
server's error text, request ids and URLs (never from headers). An error the caller can fix by
passing something else names the fix as ``remedy`` (``api_key``, ``https``, ``overwrite`` or
``source``), so a front end such as the CLI can say it in its own terms; ``problem`` is the
message without the SDK's wording of the fix.
"""

from __future__ import annotations

from typing import Any, Literal

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConflictError",
    "DownloadError",
    "IntegrityError",
    "JobCancelled",
    "JobError",
    "JobFailed",
    "JobTimeout",
    "MalformedResponseError",
    "NotFoundError",
    "PermissionDeniedError",
    "RadientError",
    "RateLimitError",
    "ServerError",
    "SessionClosedError",
    "UnexpectedStatusError",
    "ValidationError",
]


Remedy = Literal["api_key", "https", "overwrite", "source"]
"""What the caller can pass to fix an error: the key, an https URL, overwrite=True, a source."""

_REMEDIES: dict[Remedy, str] = {
    "api_key": "pass api_key=... or set RADIENT_API_KEY; for the local server, see "
    "radient_async.server",
    "https": "use https, or pass allow_insecure_http=True",
    "overwrite": "pass overwrite=True to replace it",
    "source": "give a source",
}
"""What the caller can do about an error, by its ``remedy``, in the Python API's terms."""


class RadientError(Exception):
    """Base class of every error radient_async raises."""

    def __init__(self, message: str, *, remedy: Remedy | None = None) -> None:
        self.problem = message
        self.remedy = remedy
        if remedy is not None:
            message = f"{message} ({_REMEDIES[remedy]})"
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take richer constructor arguments than ``args`` holds: rebuild from state
        # instead, so errors cross process boundaries (multiprocessing, Ray) and copy cleanly.
        return _rebuild, (type(self), self.args, self.__dict__)


def _rebuild(cls: type[RadientError], args: tuple[Any, ...], state: dict[str, Any]) -> RadientError:
    """Unpickle a ``RadientError`` without calling its ``__init__``."""
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class ValidationError(RadientError, ValueError):
    """An argument is invalid; raised before anything is sent. ``field`` names the culprit."""

    def __init__(self, field: str, message: str, *, remedy: Remedy | None = None) -> None:
        super().__init__(f"{field}: {message}", remedy=remedy)
        self.field = field


class ConfigurationError(RadientError, ValueError):
    """The session cannot be used as configured (no API key, a bad base URL, insecure transport)."""


class SessionClosedError(RadientError, RuntimeError):
    """The session is not open: use it inside ``async with Session(...)``."""


class APIError(RadientError):
    """The API answered with an error status; carries what it said."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        request_id: str | None = None,
        body: str = "",
        code: str | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.request_id = request_id
        self.body = body
        self.code = code
        self.field = field


class BadRequestError(APIError):
    """The API rejected the request as invalid (400, 413, 422)."""


class AuthenticationError(APIError):
    """The API key is missing or wrong (401)."""


class PermissionDeniedError(APIError):
    """The API key may not do this (403)."""


class NotFoundError(APIError):
    """The job or resource does not exist, or has expired (404)."""


class ConflictError(APIError):
    """The request conflicts with another one in progress (409)."""


class RateLimitError(APIError):
    """Too many requests (429); ``retry_after`` is the wait the server asked for, if any."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class ServerError(APIError):
    """The API failed on its side (5xx)."""


class APIConnectionError(RadientError):
    """The API could not be reached, or the connection broke mid-response."""


class APITimeoutError(APIConnectionError, TimeoutError):
    """A call did not finish within its overall timeout, retries included."""


class MalformedResponseError(RadientError):
    """A response was not the JSON the API documents (HTML, truncated, wrong shape)."""

    def __init__(self, message: str, *, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class JobError(RadientError):
    """A generation job did not produce images."""

    def __init__(self, message: str, *, request_id: str) -> None:
        super().__init__(message)
        self.request_id = request_id


class JobFailed(JobError):
    """The server reported the job FAILED; ``error`` is its explanation."""

    def __init__(self, request_id: str, error: str | None) -> None:
        self.error = error or "no error message given"
        super().__init__(f"job {request_id} failed: {self.error}", request_id=request_id)


class JobTimeout(JobError, TimeoutError):
    """The job's deadline passed while it was still running; it may still finish on the server."""

    def __init__(
        self, request_id: str, waited: float, last_status: str | None, last_error: str = ""
    ) -> None:
        self.waited = waited
        self.last_status = last_status
        detail = f"; the last status poll failed: {last_error}" if last_error else ""
        super().__init__(
            f"job {request_id} did not finish within {waited:.1f}s "
            f"(last status: {last_status}{detail})",
            request_id=request_id,
        )


class JobCancelled(JobError):
    """Polling stopped because the handle was cancelled or its session closed.

    The job itself may still finish on the server; re-attach with ``session.job(request_id)``.
    """

    def __init__(self, request_id: str, reason: str) -> None:
        super().__init__(f"job {request_id} was cancelled: {reason}", request_id=request_id)


class UnexpectedStatusError(JobError):
    """The server kept reporting a job status this SDK does not know."""

    def __init__(self, request_id: str, status: str) -> None:
        self.status = status
        super().__init__(
            f"job {request_id} reported unknown status {status!r} repeatedly", request_id=request_id
        )


class DownloadError(RadientError):
    """An image could not be downloaded or saved."""

    def __init__(
        self, message: str, *, url: str | None = None, remedy: Remedy | None = None
    ) -> None:
        super().__init__(message, remedy=remedy)
        self.url = url


class IntegrityError(DownloadError):
    """The bytes received do not match what the server announced (a truncated transfer)."""
