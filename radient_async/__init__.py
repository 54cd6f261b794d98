"""radient_async: an asyncio-native client for Radient's Image Generation API.

async with radient_async.Session() as session:
    job = await session.submit("a lighthouse at dusk", num_images=2)
    result = await job
    paths = await result.download("out/")
"""

from __future__ import annotations

from ._batch_items import BatchOutcome
from ._config import Limits, Timeouts
from ._display import Gallery, gallery, gallery_html
from ._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    DownloadError,
    IntegrityError,
    JobCancelled,
    JobError,
    JobFailed,
    JobTimeout,
    MalformedResponseError,
    NotFoundError,
    PermissionDeniedError,
    RadientError,
    RateLimitError,
    ServerError,
    SessionClosedError,
    UnexpectedStatusError,
    ValidationError,
)
from ._jobs import JobHandle
from ._keys import derive_idempotency_key, request_fingerprint
from ._models import (
    IMAGE_SIZES,
    GenerationRequest,
    GenerationResult,
    Image,
    ImageSize,
    JobStatus,
    JobUpdate,
)
from ._polling import PollPolicy
from ._progress import BatchStats, ProgressSink
from ._retry import RetryPolicy
from ._session import DEFAULT_BASE_URL, Session
from ._version import __version__

__all__ = [
    "DEFAULT_BASE_URL",
    "IMAGE_SIZES",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BatchOutcome",
    "BatchStats",
    "ConfigurationError",
    "ConflictError",
    "DownloadError",
    "Gallery",
    "GenerationRequest",
    "GenerationResult",
    "Image",
    "ImageSize",
    "IntegrityError",
    "JobCancelled",
    "JobError",
    "JobFailed",
    "JobHandle",
    "JobStatus",
    "JobTimeout",
    "JobUpdate",
    "Limits",
    "MalformedResponseError",
    "NotFoundError",
    "PermissionDeniedError",
    "PollPolicy",
    "ProgressSink",
    "RadientError",
    "RateLimitError",
    "RetryPolicy",
    "ServerError",
    "Session",
    "SessionClosedError",
    "Timeouts",
    "UnexpectedStatusError",
    "ValidationError",
    "__version__",
    "derive_idempotency_key",
    "gallery",
    "gallery_html",
    "request_fingerprint",
]
