"""Public value types: what users build (requests) and what they get back (results, images).

They are frozen attrs classes. Requests validate on construction, so a bad value raises
``ValidationError`` naming the field before anything touches the network.
"""

from __future__ import annotations

import enum
import math
import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Protocol

import anyio
import attrs

from ._errors import SessionClosedError, ValidationError
from ._paths import check_output_folder, output_folder_checked, safe_filename
from ._sources import validate_source_url
from ._validate import argument, boolean
from ._validate import path as _path

__all__ = [
    "IMAGE_SIZES",
    "MAX_NUM_IMAGES",
    "GenerationRequest",
    "GenerationResult",
    "Image",
    "ImageSize",
    "JobStatus",
    "JobUpdate",
]

MAX_NUM_IMAGES = 8
MAX_PROMPT_CHARS = 10_000
MIN_SIDE, MAX_SIDE = 16, 4096

IMAGE_SIZES: Mapping[str, tuple[int, int]] = MappingProxyType(
    {
        "square_hd": (1024, 1024),
        "square": (512, 512),
        "portrait_4_3": (768, 1024),
        "portrait_16_9": (576, 1024),
        "landscape_4_3": (1024, 768),
        "landscape_16_9": (1024, 576),
    }
)

# Fields the SDK models itself; ``extra`` may not shadow them.
_KNOWN_FIELDS = frozenset(
    {
        "prompt",
        "num_images",
        "image_size",
        "sync_mode",
        "provider",
        "source_url",
        "strength",
        "guidance_scale",
        "num_inference_steps",
        "seed",
    }
)


class JobStatus(str, enum.Enum):
    """The documented job states; a status string outside them is reported as ``UNKNOWN``."""

    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    UNKNOWN = "UNKNOWN"

    @property
    def is_terminal(self) -> bool:
        """True for COMPLETED and FAILED: no further change will come."""
        return self in (JobStatus.COMPLETED, JobStatus.FAILED)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_int_range(field: str, value: object, low: int, high: int) -> None:
    if type(value) is not int and not _is_int(value):  # a plain int needs no second look
        raise ValidationError(field, f"must be an integer, got {type(value).__name__}")
    if not low <= value <= high:  # type: ignore[operator]
        raise ValidationError(field, f"must be between {low} and {high}, got {value}")


def _check_number(field: str, value: object, low: float, high: float, *, open_low: bool) -> None:
    if not _is_number(value):
        raise ValidationError(field, f"must be a number, got {type(value).__name__}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except OverflowError:  # an int beyond any float
        raise ValidationError(
            field, f"must be in range, got an integer of {len(str(value))} digits"
        ) from None
    below = number <= low if open_low else number < low
    if math.isnan(number) or below or number > high:
        bound = "(" if open_low else "["
        raise ValidationError(field, f"must be in {bound}{low}, {high}], got {value}")


@attrs.frozen
class ImageSize:
    """A custom output size in pixels (each side 16..4096)."""

    width: int
    height: int

    def __attrs_post_init__(self) -> None:
        width, height = self.width, self.height
        plain = type(width) is int and type(height) is int  # then one comparison each
        if plain and MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE:
            return
        _check_int_range("image_size.width", width, MIN_SIDE, MAX_SIDE)
        _check_int_range("image_size.height", height, MIN_SIDE, MAX_SIDE)


def _validate_image_size(value: object) -> None:
    if value is None or isinstance(value, ImageSize):
        return
    if isinstance(value, str):
        if value not in IMAGE_SIZES:
            names = ", ".join(IMAGE_SIZES)
            raise ValidationError("image_size", f"unknown size {value!r}; use one of {names}")
        return
    raise ValidationError("image_size", f"must be a size name or ImageSize, not {type(value)}")


def _coerce_image_size(value: object) -> object:
    """Accept ``(w, h)`` tuples and ``{"width", "height"}`` dicts as custom sizes."""
    if isinstance(value, tuple) and len(value) == 2:
        return ImageSize(*value)
    if isinstance(value, Mapping) and set(value) == {"width", "height"}:
        return ImageSize(value["width"], value["height"])
    return value


_NO_EXTRA: Mapping[str, Any] = MappingProxyType({})


def _freeze_extra(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """``extra`` as a read-only mapping, once it is known to be sendable as JSON."""
    if value is None or (type(value) is dict and not value):  # the common case: none given
        return _NO_EXTRA
    if not isinstance(value, Mapping):
        raise ValidationError(
            "extra", f"must be a mapping of field names, got {type(value).__name__}"
        )
    fields = dict(value)
    _check_json("extra", fields)
    return MappingProxyType(fields)


def _check_json(path: str, value: object, depth: int = 0) -> None:
    """Refuse what JSON cannot carry as given: non-str keys, NaN, bytes, objects, deep nesting."""
    if depth > 32:
        raise ValidationError("extra", f"{path} is nested too deeply to send")
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError("extra", f"{path} is {value}, which JSON cannot carry")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError("extra", f"keys in {path} must be strings, got {key!r}")
            _check_json(f"{path}.{key}", item, depth + 1)
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_json(f"{path}[{index}]", item, depth + 1)
        return
    raise ValidationError("extra", f"{path} is a {type(value).__name__}, which JSON cannot carry")


@attrs.frozen(kw_only=True)
class GenerationRequest:
    """One generation to submit: text-to-image, or image-to-image when ``source_url`` is set.

    ``None`` fields are left out of the request so the API applies its defaults. ``extra`` passes
    fields this SDK does not model yet straight through to the API.
    """

    prompt: str
    num_images: int = 1
    image_size: str | ImageSize | None = attrs.field(default=None, converter=_coerce_image_size)
    sync_mode: bool = False
    provider: str | None = None
    source_url: str | None = None
    strength: float | None = None
    guidance_scale: float | None = None
    num_inference_steps: int | None = None
    seed: int | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, converter=_freeze_extra)

    def __attrs_post_init__(self) -> None:
        self._validate_text_fields()
        self._validate_numbers()
        _validate_image_size(self.image_size)
        clash = _KNOWN_FIELDS & set(self.extra) if self.extra else None
        if clash:
            raise ValidationError("extra", f"use the named argument for {sorted(clash)}")

    def _validate_text_fields(self) -> None:
        if not isinstance(self.prompt, str):
            raise ValidationError("prompt", f"must be a string, got {type(self.prompt).__name__}")
        if not self.prompt.strip():
            raise ValidationError("prompt", "must not be empty")
        if len(self.prompt) > MAX_PROMPT_CHARS:
            raise ValidationError("prompt", f"must be at most {MAX_PROMPT_CHARS} characters")
        if not isinstance(self.sync_mode, bool):
            raise ValidationError("sync_mode", "must be True or False")
        if self.provider is not None and (
            not isinstance(self.provider, str) or not self.provider.strip()
        ):
            raise ValidationError("provider", "must be a non-empty string")
        if self.source_url is not None:
            validate_source_url(self.source_url)
        if self.strength is not None and self.source_url is None:
            raise ValidationError("strength", "only applies to image-to-image", remedy="source")

    def _validate_numbers(self) -> None:
        _check_int_range("num_images", self.num_images, 1, MAX_NUM_IMAGES)
        if self.strength is not None:
            _check_number("strength", self.strength, 0.0, 1.0, open_low=False)
        if self.guidance_scale is not None:
            _check_number("guidance_scale", self.guidance_scale, 0.0, 50.0, open_low=True)
        if self.num_inference_steps is not None:
            _check_int_range("num_inference_steps", self.num_inference_steps, 1, 200)
        if self.seed is not None:
            _check_int_range("seed", self.seed, 0, 2**63 - 1)

    def __repr__(self) -> str:
        source = _short(self.source_url) if self.source_url else None
        return (
            f"GenerationRequest(prompt={_short(self.prompt)!r}, num_images={self.num_images}, "
            f"image_size={self.image_size!r}, provider={self.provider!r}, source_url={source!r})"
        )


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ImageFetcher(Protocol):
    """What an ``Image`` needs to fetch itself: implemented by the session's downloader."""

    async def read(self, image: Image) -> bytes: ...

    async def save(self, image: Image, path: str | os.PathLike[str], *, overwrite: bool) -> str: ...

    async def save_all(
        self, images: tuple[Image, ...], directory: str | os.PathLike[str], *, overwrite: bool
    ) -> list[str]: ...


_EXTENSIONS = MappingProxyType(
    {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif"}
)


def extension_for(mime: str) -> str:
    """The extension for an image type we know (``.png``/``.jpg``/``.webp``/``.gif``), else .png."""
    return _EXTENSIONS.get(mime, ".png")


@attrs.frozen(kw_only=True)
class Image:
    """One generated image: where it is, its size and type, and how to fetch it."""

    url: str
    width: int | None = None
    height: int | None = None
    content_type: str | None = None
    request_id: str = ""
    index: int = 0
    _fetcher: ImageFetcher | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def extension(self) -> str:
        """The file extension for ``content_type`` if it is an image type we know, else ``.png``.

        Only a guess before the download: a saved file is named by the type its bytes show.
        """
        return extension_for((self.content_type or "").split(";")[0].strip().lower())

    @property
    def filename(self) -> str:
        """A safe file name built from the request id and index, never from the URL."""
        return safe_filename(self.request_id, self.index, self.extension)

    async def read(self) -> bytes:
        """Fetch the image bytes (``data:`` URIs are decoded locally)."""
        return await self._require_fetcher().read(self)

    async def download(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> str:
        """Stream the image to ``path`` atomically; a directory gets the safe default name."""
        argument("path", path, _path)
        argument("overwrite", overwrite, boolean)
        return await self._require_fetcher().save(self, path, overwrite=overwrite)

    def _require_fetcher(self) -> ImageFetcher:
        if self._fetcher is None:
            raise SessionClosedError("this image is not attached to a session")
        return self._fetcher

    def _repr_html_(self) -> str:
        from ._display import image_html

        return image_html(self)


@attrs.frozen(kw_only=True)
class GenerationResult:
    """A completed generation: its images, plus what the server reported about it."""

    request_id: str
    provider: str | None = None
    images: tuple[Image, ...] = ()
    seed: int | None = None
    prompt: str | None = None
    _fetcher: ImageFetcher | None = attrs.field(default=None, eq=False, repr=False)

    async def download(
        self, directory: str | os.PathLike[str] = ".", *, overwrite: bool = False
    ) -> list[str]:
        """Download every image into ``directory`` concurrently; returns the paths in order.

        The folder is made if need be, and checked (a folder we may write in) before any fetch:
        once per folder and process, so a download per job into one folder costs no extra hop.
        """
        argument("directory", directory, _path)
        argument("overwrite", overwrite, boolean)
        if not self.images:
            return []
        folder = os.fspath(directory)
        if not output_folder_checked(folder):  # checked once per folder, not per call
            await anyio.to_thread.run_sync(check_output_folder, folder, "directory")
        if self._fetcher is None:
            return [await image.download(directory, overwrite=overwrite) for image in self.images]
        return await self._fetcher.save_all(self.images, directory, overwrite=overwrite)

    def _repr_html_(self) -> str:
        from ._display import result_html

        return result_html(self)


@attrs.frozen(kw_only=True)
class JobUpdate:
    """One observed state of a job: what ``JobHandle.updates()`` yields on each change."""

    request_id: str
    status: JobStatus
    raw_status: str
    provider: str | None = None
    images: tuple[Image, ...] = ()
    error: str | None = None
    seed: int | None = None
