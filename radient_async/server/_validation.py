"""Validation of generate bodies: every bad input becomes a 4xx ``ApiError``, never a 500.

Pure and synchronous. Unknown fields are ignored (a tolerant reader), known fields are checked
strictly: a wrong JSON type is a 400 (``code="type"``), a well-typed but unacceptable value a 422.
``null`` for an optional field means "not given". The limits are the SDK's own constants, so the
client and the server can never disagree about what is valid.
"""

from __future__ import annotations

import math
from typing import Any

import attrs

from radient_async._models import (
    IMAGE_SIZES,
    MAX_NUM_IMAGES,
    MAX_PROMPT_CHARS,
    MAX_SIDE,
    MIN_SIDE,
)

from ._responses import ApiError

__all__ = [
    "DEFAULT_SIZE",
    "DEFAULT_STRENGTH",
    "GenerateParams",
    "check_provider",
    "fails_on_purpose",
    "parse_generate",
]

DEFAULT_SIZE = "square_hd"
DEFAULT_STRENGTH = 0.5
"""Used when a ``source_url`` comes without a ``strength`` (the guide: "may vary by provider")."""
MAX_SEED = 2**63 - 1
FAIL_MARKER = "[fail]"


@attrs.frozen
class GenerateParams:
    """A validated generate request: only what the server acts on."""

    prompt: str
    num_images: int
    width: int
    height: int
    sync_mode: bool
    provider: str
    seed: int | None
    source_url: str | None
    strength: float | None


def _type_error(name: str, expected: str) -> ApiError:
    return ApiError(f"{name} must be {expected}", field=name, status=400, code="type")


def _int(body: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _type_error(name, "an integer")
    if not low <= value <= high:
        raise ApiError(f"{name} must be between {low} and {high}", field=name, code="out_of_range")
    return value


def _number(
    body: dict[str, Any], name: str, low: float, high: float, *, open_low: bool
) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _type_error(name, "a number")
    number = float(value)
    too_low = number <= low if open_low else number < low
    if math.isnan(number) or too_low or number > high:
        bracket = "(" if open_low else "["
        raise ApiError(
            f"{name} must be within {bracket}{low:g}, {high:g}]", field=name, code="out_of_range"
        )
    return number


def _prompt(body: dict[str, Any]) -> str:
    prompt = body.get("prompt")
    if prompt is None:
        raise ApiError("prompt is required", field="prompt", code="missing")
    if not isinstance(prompt, str):
        raise _type_error("prompt", "a string")
    if not prompt.strip():
        raise ApiError("prompt must not be empty", field="prompt", code="empty")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ApiError(
            f"prompt must be at most {MAX_PROMPT_CHARS} characters",
            field="prompt",
            code="out_of_range",
        )
    return prompt


def _size(value: Any) -> tuple[int, int]:
    if value is None:
        return IMAGE_SIZES[DEFAULT_SIZE]
    if isinstance(value, str):
        size = IMAGE_SIZES.get(value)
        if size is None:
            raise ApiError(
                f"unknown image_size {value!r}; use one of {', '.join(IMAGE_SIZES)} "
                'or {"width": W, "height": H}',
                field="image_size",
                code="unknown_value",
            )
        return size
    if not isinstance(value, dict):
        raise _type_error("image_size", "a size name or an object with width and height")
    sides = []
    for side in ("width", "height"):
        number = value.get(side)
        if number is None:
            raise ApiError(f"image_size.{side} is required", field="image_size", code="missing")
        if isinstance(number, bool) or not isinstance(number, int):
            raise ApiError(
                f"image_size.{side} must be an integer", field="image_size", status=400, code="type"
            )
        if not MIN_SIDE <= number <= MAX_SIDE:
            raise ApiError(
                f"image_size.{side} must be between {MIN_SIDE} and {MAX_SIDE}",
                field="image_size",
                code="out_of_range",
            )
        sides.append(number)
    return sides[0], sides[1]


def _provider(body: dict[str, Any], providers: tuple[str, ...]) -> str:
    provider = body.get("provider")
    if provider is None:
        return providers[0]
    if not isinstance(provider, str):
        raise _type_error("provider", "a string")
    if provider not in providers:
        raise ApiError(
            f"unknown provider {provider!r}; available: {', '.join(providers)}",
            field="provider",
            code="unknown_value",
        )
    return provider


def _source_url(body: dict[str, Any]) -> str | None:
    url = body.get("source_url")
    if url is None:
        return None
    if not isinstance(url, str):
        raise _type_error("source_url", "a string")
    scheme = url[:8].lower()
    if not scheme.startswith(("data:", "http://", "https://")):
        raise ApiError(
            "source_url must be an http(s) URL or a data: URI", field="source_url", code="scheme"
        )
    return url


def check_provider(value: str | None, providers: tuple[str, ...]) -> str | None:
    """The ``provider`` query parameter of a status call, checked (``None`` when not given)."""
    if value is not None and value not in providers:
        raise ApiError(
            f"unknown provider {value!r}; available: {', '.join(providers)}",
            field="provider",
            code="unknown_value",
        )
    return value


def parse_generate(body: Any, providers: tuple[str, ...]) -> GenerateParams:
    """Check a decoded JSON body against the documented fields (first provider: the default)."""
    if not isinstance(body, dict):
        raise ApiError("the body must be a JSON object", status=400, code="type")
    prompt = _prompt(body)
    num_images = _int(body, "num_images", 1, MAX_NUM_IMAGES)
    width, height = _size(body.get("image_size"))
    sync_mode = body.get("sync_mode")
    if sync_mode is not None and not isinstance(sync_mode, bool):
        raise _type_error("sync_mode", "true or false")
    provider = _provider(body, providers)
    seed = _int(body, "seed", 0, MAX_SEED)
    _number(body, "guidance_scale", 0.0, 50.0, open_low=True)
    _int(body, "num_inference_steps", 1, 200)
    strength = _number(body, "strength", 0.0, 1.0, open_low=False)
    source_url = _source_url(body)
    if source_url is not None and strength is None:
        strength = DEFAULT_STRENGTH
    return GenerateParams(
        prompt=prompt,
        num_images=num_images or 1,
        width=width,
        height=height,
        sync_mode=bool(sync_mode),
        provider=provider,
        seed=seed,
        source_url=source_url,
        strength=strength if source_url is not None else None,
    )


def fails_on_purpose(prompt: str) -> bool:
    """A prompt containing ``[fail]`` makes its job end FAILED (a demo without controls)."""
    return FAIL_MARKER in prompt.lower()
