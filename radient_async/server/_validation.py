"""Validation of generate requests: every bad input becomes a 4xx with a JSON error, never a 500."""

from __future__ import annotations

import base64
import binascii
import io
import math
from typing import Any

import attrs
from PIL import Image, UnidentifiedImageError

from radient_async._models import IMAGE_SIZES, MAX_NUM_IMAGES, MAX_PROMPT_CHARS, MAX_SIDE, MIN_SIDE

__all__ = ["SIZES", "GenerateParams", "InvalidRequest", "decode_data_uri", "parse_generate"]

# One source of truth for the limits: the SDK validates with the same numbers before sending.
SIZES = IMAGE_SIZES
DEFAULT_SIZE = "square_hd"
MAX_IMAGES = MAX_NUM_IMAGES
MAX_PROMPT = MAX_PROMPT_CHARS
_IMAGE_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP"}


class InvalidRequest(Exception):
    """A client error: HTTP ``status`` with a message, a machine code and the culprit field."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        status: int = 422,
        code: str = "invalid_request",
    ) -> None:
        super().__init__(message)
        self.message, self.field, self.status, self.code = message, field, status, code


@attrs.frozen
class GenerateParams:
    """A validated generate request."""

    prompt: str
    num_images: int
    width: int
    height: int
    sync_mode: bool
    provider: str
    seed: int | None
    source_url: str | None
    strength: float | None


def _int(body: dict[str, Any], name: str, low: int, high: int, default: int | None) -> int | None:
    value = body.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{name} must be an integer", field=name, status=400, code="type")
    if not low <= value <= high:
        raise InvalidRequest(f"{name} must be between {low} and {high}", field=name)
    return value


def _number(
    body: dict[str, Any], name: str, low: float, high: float, *, open_low: bool
) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRequest(f"{name} must be a number", field=name, status=400, code="type")
    number = float(value)
    if math.isnan(number) or number > high or (number <= low if open_low else number < low):
        raise InvalidRequest(
            f"{name} must be within {'(' if open_low else '['}{low}, {high}]", field=name
        )
    return number


def _size(value: Any) -> tuple[int, int]:
    if value is None:
        return SIZES[DEFAULT_SIZE]
    if isinstance(value, str):
        if value not in SIZES:
            raise InvalidRequest(
                f"unknown image_size {value!r}; use one of {', '.join(SIZES)} or {{width, height}}",
                field="image_size",
            )
        return SIZES[value]
    if isinstance(value, dict):
        width, height = value.get("width"), value.get("height")
        for side in (width, height):
            if isinstance(side, bool) or not isinstance(side, int):
                raise InvalidRequest(
                    "image_size width and height must be integers",
                    field="image_size",
                    status=400,
                    code="type",
                )
            if not MIN_SIDE <= side <= MAX_SIDE:
                raise InvalidRequest(
                    f"image_size sides must be {MIN_SIDE}..{MAX_SIDE}", field="image_size"
                )
        return width, height  # type: ignore[return-value]
    raise InvalidRequest(
        "image_size must be a size name or {width, height}",
        field="image_size",
        status=400,
        code="type",
    )


def parse_generate(body: Any, providers: tuple[str, ...]) -> GenerateParams:
    """Check a decoded JSON body against the documented fields; unknown fields are ignored."""
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object", status=400, code="type")
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        raise InvalidRequest(
            "prompt is required and must be a string",
            field="prompt",
            status=400 if "prompt" in body else 422,
        )
    if not prompt.strip():
        raise InvalidRequest("prompt must not be empty", field="prompt")
    if len(prompt) > MAX_PROMPT:
        raise InvalidRequest(f"prompt must be at most {MAX_PROMPT} characters", field="prompt")
    num_images = _int(body, "num_images", 1, MAX_IMAGES, 1)
    assert num_images is not None
    width, height = _size(body.get("image_size"))
    sync_mode = body.get("sync_mode", False)
    if not isinstance(sync_mode, bool):
        raise InvalidRequest(
            "sync_mode must be true or false", field="sync_mode", status=400, code="type"
        )
    provider = body.get("provider") or "default"
    if not isinstance(provider, str):
        raise InvalidRequest("provider must be a string", field="provider", status=400, code="type")
    if provider not in providers:
        raise InvalidRequest(
            f"unknown provider {provider!r}; available: {', '.join(providers)}", field="provider"
        )
    seed = _int(body, "seed", 0, 2**63 - 1, None)
    _number(body, "guidance_scale", 0.0, 50.0, open_low=True)
    _int(body, "num_inference_steps", 1, 200, None)
    strength = _number(body, "strength", 0.0, 1.0, open_low=False)
    source_url = body.get("source_url")
    if source_url is not None and (not isinstance(source_url, str) or not source_url):
        raise InvalidRequest(
            "source_url must be a non-empty string", field="source_url", status=400, code="type"
        )
    return GenerateParams(
        prompt, num_images, width, height, sync_mode, provider, seed, source_url, strength
    )


def decode_data_uri(value: str, max_bytes: int) -> Image.Image:
    """The image in a base64 ``data:`` URI (PNG, JPEG, GIF or WebP), fully decoded and checked."""
    header, comma, payload = value[5:].partition(",")
    params = [p.strip().lower() for p in header.split(";")]
    if not comma or "base64" not in params[1:]:
        raise InvalidRequest("source_url data: URI must be base64", field="source_url")
    if params[0] not in _IMAGE_TYPES:
        raise InvalidRequest(
            "source_url data: URI must be a PNG, JPEG, GIF or WebP image", field="source_url"
        )
    if len(payload) * 3 // 4 > max_bytes + 3:
        raise InvalidRequest(
            "source_url image is too large", field="source_url", status=413, code="too_large"
        )
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("source_url has invalid base64", field="source_url") from None
    return open_image(data, "source_url")


def open_image(data: bytes, field: str) -> Image.Image:
    """Decode image bytes with Pillow; anything that is not a supported image is a 422."""
    try:
        picture = Image.open(io.BytesIO(data))
        if picture.format not in _IMAGE_TYPES.values():
            raise InvalidRequest(f"{field} must be a PNG, JPEG, GIF or WebP image", field=field)
        picture.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise InvalidRequest(f"{field} is not a readable image", field=field) from None
    return picture
