"""Idempotency keys: the one rule that checks a caller's key and the one that derives a key.

A key chosen by the caller makes a submit replay-safe across processes: the server answers a
repeated key with the job it already has. Resumable batches (the manifest) and distributed runs
(`radient_async.ray`) derive their keys with `derive_idempotency_key`, so the same item of the same
run always sends the same key, whoever sends it.
"""

from __future__ import annotations

import hashlib
import json

from ._convert import request_to_wire
from ._errors import ValidationError
from ._models import GenerationRequest

__all__ = [
    "MAX_KEY_LENGTH",
    "check_idempotency_key",
    "derive_idempotency_key",
    "request_fingerprint",
]

_encode_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode

MAX_KEY_LENGTH = 255  # the API's limit for the Idempotency-Key header


def check_idempotency_key(key: object) -> str:
    """``key`` if it can be sent as an ``Idempotency-Key`` header, else a ``ValidationError``."""
    if not isinstance(key, str):
        raise ValidationError("idempotency_key", f"must be a string, got {type(key).__name__}")
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise ValidationError(
            "idempotency_key", f"must be 1-{MAX_KEY_LENGTH} characters, got {len(key)}"
        )
    if not all("!" <= char <= "~" for char in key):
        raise ValidationError(
            "idempotency_key", "must be printable ASCII without spaces or control characters"
        )
    return key


def request_fingerprint(request: GenerationRequest) -> str:
    """A stable digest of everything that is sent for ``request``."""
    canonical = _encode_canonical(request_to_wire(request))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def derive_idempotency_key(
    run_id: str, item_id: str | int, request: GenerationRequest | str, attempt: int = 0
) -> str:
    """The key for one item of one run: the same run, item, request and attempt give the same key.

    ``request`` is the ``GenerationRequest`` (or its ``request_fingerprint``); a changed request
    gets a new key, so an edited item never receives the job made for the old one. ``attempt``
    counts deliberate retries of an item whose job failed.
    """
    if not isinstance(run_id, str) or not run_id:
        raise ValidationError("run_id", "must be a non-empty string")
    if isinstance(item_id, bool) or not isinstance(item_id, (str, int)):
        raise ValidationError("item_id", f"must be a string or an int, got {item_id!r}")
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
        raise ValidationError("attempt", f"must be an int >= 0, got {attempt!r}")
    fingerprint = request if isinstance(request, str) else request_fingerprint(request)
    seed = f"{run_id}:{item_id}:{fingerprint}:{attempt}"
    return hashlib.sha256(seed.encode()).hexdigest()[:32]
