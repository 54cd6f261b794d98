"""The SDK's private cattrs converter: wire JSON to typed values, and requests to wire JSON.

Lenient where the API may grow (unknown response fields are ignored) and strict where a wrong type
would mislead us (a number where a string belongs is an error, not silently ``str()``-ed).
``structure_job`` reads the common, well-typed job answer by hand (it is read once per submit
and once per poll); anything unusual goes through the converter, which words the error.
"""

from __future__ import annotations

import typing
from typing import Any

import attrs
import cattrs
import cattrs.cols
from cattrs.errors import ClassValidationError, IterableValidationError

from ._errors import MalformedResponseError
from ._models import GenerationRequest, ImageSize

__all__ = [
    "WireImage",
    "WireJob",
    "WireProviders",
    "request_to_wire",
    "structure",
    "structure_job",
]


@attrs.frozen
class WireImage:
    """An image entry as the API sends it."""

    url: str
    width: int | None = None
    height: int | None = None
    content_type: str | None = None


@attrs.frozen
class WireJob:
    """A job (generate or status response) as the API sends it."""

    request_id: str
    status: str
    images: list[WireImage] | None = None
    provider: str | None = None
    error: str | None = None
    seed: int | None = None


@attrs.frozen
class WireProviders:
    """The providers listing as the API sends it."""

    providers: list[str]


def _strict_str(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _strict_int(value: Any, _: type) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _error_text(value: Any, _: type) -> str | None:
    """The API's ``error`` is a string; tolerate ``{"message": ...}`` objects too."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict):
        message = value.get("message")
        if isinstance(message, str):
            return message
    return str(value)


def _is_list(cls: Any) -> bool:
    return typing.get_origin(cls) is list


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=False)
    converter.register_structure_hook(str, _strict_str)

    def strict_list_hook(cls: Any) -> Any:
        # cattrs iterates any iterable: a string would become its characters, a dict its keys.
        elements = cattrs.cols.list_structure_factory(cls, converter)

        def strict_list(value: Any, _: type) -> Any:
            if not isinstance(value, list):
                raise TypeError(f"expected a JSON array, got {type(value).__name__}")
            return elements(value, cls)

        return strict_list

    converter.register_structure_hook_factory(_is_list, strict_list_hook)
    converter.register_structure_hook(int, _strict_int)
    converter.register_structure_hook_func(
        lambda t: t is WireJob,
        cattrs.gen.make_dict_structure_fn(
            WireJob,
            converter,
            error=cattrs.gen.override(struct_hook=_error_text),
        ),
    )
    return converter


_converter = _make_converter()


def structure(data: Any, cls: type[Any], *, what: str) -> Any:
    """Structure decoded JSON into ``cls``; any mismatch becomes ``MalformedResponseError``."""
    if not isinstance(data, dict):
        raise MalformedResponseError(f"{what}: expected a JSON object, got {type(data).__name__}")
    try:
        return _converter.structure(data, cls)
    except (ClassValidationError, IterableValidationError) as exc:
        details = "; ".join(cattrs.transform_error(exc, path=what))
        raise MalformedResponseError(f"unexpected {what} shape: {details}") from None
    except (TypeError, ValueError, KeyError) as exc:  # pragma: no cover - defensive
        raise MalformedResponseError(f"unexpected {what} shape: {exc}") from None


def structure_job(data: Any) -> WireJob:
    """A decoded job answer as a ``WireJob``: what ``structure(data, WireJob, what="job")``
    gives, read by hand when every field has its plain JSON type (the common case)."""
    job = _plain_job(data) if type(data) is dict else None
    if job is None:
        job = structure(data, WireJob, what="job")
    return job


def _plain_job(data: dict[str, Any]) -> WireJob | None:
    """The job if every field it uses has its plain JSON type, else None (for the converter)."""
    request_id, status = data.get("request_id"), data.get("status")
    provider, error, seed = data.get("provider"), data.get("error"), data.get("seed")
    if type(request_id) is not str or type(status) is not str:
        return None
    if not (
        (provider is None or type(provider) is str)
        and (error is None or type(error) is str)
        and (seed is None or type(seed) is int)  # exactly: True is not a seed
    ):
        return None
    listed, images = data.get("images"), None
    if listed is not None:
        if type(listed) is not list:
            return None
        images = []
        for entry in listed:
            image = _plain_image(entry)
            if image is None:
                return None
            images.append(image)
    return WireJob(request_id, status, images, provider, error, seed)


def _plain_image(entry: Any) -> WireImage | None:
    if type(entry) is not dict:
        return None
    url, width, height = entry.get("url"), entry.get("width"), entry.get("height")
    content_type = entry.get("content_type")
    if type(url) is not str or not (
        (width is None or type(width) is int) and (height is None or type(height) is int)
    ):
        return None
    if not (content_type is None or type(content_type) is str):
        return None
    return WireImage(url, width, height, content_type)


def request_to_wire(request: GenerationRequest) -> dict[str, Any]:
    """The JSON body for ``POST /images/generate``: set fields only, extras passed through."""
    body: dict[str, Any] = {"prompt": request.prompt, "num_images": request.num_images}
    size = request.image_size
    if isinstance(size, ImageSize):
        body["image_size"] = {"width": size.width, "height": size.height}
    elif size is not None:
        body["image_size"] = size
    body["sync_mode"] = request.sync_mode
    for name in ("provider", "source_url", "strength", "guidance_scale", "num_inference_steps"):
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    if request.seed is not None:
        body["seed"] = request.seed
    body.update(request.extra)
    return body
