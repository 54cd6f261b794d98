"""The server's response vocabulary: compact JSON, the one error shape, retry headers.

Every error the API answers is ``{"error": message, "code": code, "field": field_or_null}``;
handlers raise ``ApiError`` and the middleware turns it into that body.
"""

from __future__ import annotations

import json
import math
from typing import Any

from aiohttp import web

__all__ = ["ApiError", "json_error", "json_response", "retry_headers"]

# One shared encoder; NaN stays allowed so echoing a client's odd body can never fail.
_dumps = json.JSONEncoder(separators=(",", ":")).encode


class ApiError(Exception):
    """A client error: HTTP ``status``, a message, a machine ``code`` and the culprit ``field``."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        status: int = 422,
        code: str = "invalid_request",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status
        self.code = code
        self.headers = headers

    def response(self) -> web.Response:
        """This error as the server's JSON error response."""
        return json_error(
            self.status, self.message, code=self.code, field=self.field, headers=self.headers
        )


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """``data`` as compact JSON, serialised once."""
    return web.Response(
        body=_dumps(data).encode("ascii"),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def json_error(
    status: int,
    message: str,
    *,
    code: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """The server's error shape: ``{"error", "code", "field"}``."""
    return json_response({"error": message, "code": code, "field": field}, status, headers)


def retry_headers(seconds: float) -> dict[str, str]:
    """``Retry-After`` in whole seconds (rounded up) plus the precise ``retry-after-ms``."""
    seconds = max(0.0, seconds)
    return {
        "Retry-After": str(math.ceil(seconds)),
        "retry-after-ms": str(math.ceil(seconds * 1000)),
    }
