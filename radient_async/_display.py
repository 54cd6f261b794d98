"""HTML for Jupyter: results as grids of captioned images, laid out in input order.

Two ways to build a grid, both from results or batch outcomes (outcomes go by
``BatchOutcome.index``, so a batch that finished out of order still shows in prompt order):

- ``gallery_html(items)``: synchronous; each image's source is its URL as the server gave it and
  nothing is fetched. A saved notebook shows broken images once those URLs stop working.
- ``await gallery(items)``: a ``Gallery`` that keeps showing in a saved notebook. A saved file
  (``BatchOutcome.paths``) is shown by its path relative to the notebook's folder; any other
  image is read through the SDK (``await image.read()``) and embedded as a ``data:`` thumbnail,
  downscaled with Pillow when it is installed (at most ``max_size`` px, JPEG, or PNG when the
  image has transparency). Without Pillow the original bytes are embedded when they are at most
  ``embed_limit`` bytes; a larger image, or one that cannot be read, becomes a link.

Images that are not saved are read through their session, so call ``gallery`` inside the
``async with Session(...)`` block that produced them (saved files need no session).
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import anyio
import anyio.to_thread
import attrs

if TYPE_CHECKING:
    from typing import TypeAlias

    from ._batch_items import BatchOutcome
    from ._models import GenerationResult, Image

    GalleryItem: TypeAlias = GenerationResult | BatchOutcome

__all__ = ["Gallery", "gallery", "gallery_html", "image_html", "result_html", "thumbnail_uri"]

_THUMB = 256
_EMBED_LIMIT = 256_000
_READERS = 8  # images read at once (the session's own limits apply as well)


@attrs.frozen
class _Entry:
    """One grid item: its caption, its images, their saved files, or why it has none."""

    caption: str
    images: tuple[Image, ...] = ()
    paths: tuple[str, ...] = ()
    error: str | None = None


def _caption_of_item(item: object) -> str | None:
    if isinstance(item, str):
        return item
    prompt = getattr(item, "prompt", None)
    if prompt is None and isinstance(item, Mapping):
        prompt = item.get("prompt")
    return prompt if isinstance(prompt, str) else None


def _entries(items: Iterable[GalleryItem]) -> list[_Entry]:
    """Results as they come, outcomes by their ``index``: the order the inputs were given in."""
    from ._batch_items import BatchOutcome

    listed = list(items)

    def position(pair: tuple[int, GalleryItem]) -> int:
        return pair[1].index if isinstance(pair[1], BatchOutcome) else pair[0]

    entries = []
    for _, item in sorted(enumerate(listed), key=position):
        if isinstance(item, BatchOutcome):
            result, paths = item.result, item.paths
            error = None if item.error is None else str(item.error)
            caption = (result.prompt if result else None) or _caption_of_item(item.item)
            caption = caption or item.request_id or f"item {item.index}"
        else:
            result, paths, error = item, (), None
            caption = item.prompt or item.request_id
        images = result.images if result is not None else ()
        entries.append(_Entry(caption, images, tuple(paths), error))
    return entries


def _figure(body: str, caption: str) -> str:
    return (
        f'<figure style="display:inline-block;margin:4px;max-width:{_THUMB}px">{body}'
        f'<figcaption style="font-size:small;word-wrap:break-word">{html.escape(caption)}'
        "</figcaption></figure>"
    )


def _img(src: str) -> str:
    return (
        f'<img src="{html.escape(src, quote=True)}" loading="lazy" '
        f'style="max-width:{_THUMB}px;max-height:{_THUMB}px"/>'
    )


def _grid(figures: Sequence[str], title: str | None) -> str:
    heading = f"<h3>{html.escape(title)}</h3>" if title else ""
    return f'{heading}<div style="display:flex;flex-wrap:wrap">{"".join(figures)}</div>'


def _failed(entry: _Entry) -> str:
    return _figure(f"<pre>{html.escape(entry.error or '')}</pre>", f"{entry.caption} (failed)")


def image_html(image: Image, *, caption: str | None = None) -> str:
    """One image as a figure; its URL (or ``data:`` URI) is the source, nothing is fetched here."""
    size = f"{image.width}×{image.height}" if image.width and image.height else ""
    return _figure(_img(image.url), caption if caption is not None else size)


def result_html(result: GenerationResult) -> str:
    """A result's images side by side, captioned with the prompt (or the request id)."""
    caption = result.prompt or result.request_id
    return gallery_html([result], title=None) if result.images else html.escape(caption)


def gallery_html(items: Iterable[GalleryItem], *, title: str | None = None) -> str:
    """Results or outcomes as one wrapping grid, in input order, sources the images' URLs.

    Nothing is fetched, so the grid shows only while the URLs work; ``await gallery(...)``
    builds one that a saved notebook keeps showing.
    """
    figures = []
    for entry in _entries(items):
        if entry.error is not None:
            figures.append(_failed(entry))
        figures.extend(image_html(image, caption=entry.caption) for image in entry.images)
    return _grid(figures, title)


@attrs.frozen
class Gallery:
    """A grid of images for a notebook: ``_repr_html_`` shows it, ``html`` is its markup.

    Its images are saved files (by relative path) or embedded ``data:`` thumbnails, so the
    saved notebook keeps showing them after the server that made them is gone.
    """

    html: str
    count: int

    def _repr_html_(self) -> str:
        return self.html

    def __str__(self) -> str:
        return self.html


def _sniff(data: bytes, content_type: str | None) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    declared = (content_type or "").split(";")[0].strip().lower()
    return declared if declared.startswith("image/") else "application/octet-stream"


def _data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def thumbnail_uri(
    data: bytes,
    content_type: str | None = None,
    *,
    max_size: int = _THUMB,
    embed_limit: int = _EMBED_LIMIT,
) -> str | None:
    """A ``data:`` URI of the image in ``data``, at most ``max_size`` px on its longer side.

    Downscaled with Pillow when it is installed (JPEG, or PNG when the image has transparency);
    otherwise, or when Pillow cannot decode it, the original bytes if at most ``embed_limit``
    long, else None.
    """
    try:
        from PIL import Image as PILImage
    except ImportError:
        pass
    else:
        try:
            with PILImage.open(io.BytesIO(data)) as picture:
                picture.thumbnail((max_size, max_size))
                alpha = picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info
                out = io.BytesIO()
                if alpha:
                    picture.convert("RGBA").save(out, format="PNG", optimize=True)
                    return _data_uri("image/png", out.getvalue())
                picture.convert("RGB").save(out, format="JPEG", quality=85)
                return _data_uri("image/jpeg", out.getvalue())
        except (OSError, ValueError, SyntaxError):  # not an image Pillow reads
            pass
    if len(data) <= embed_limit:
        return _data_uri(_sniff(data, content_type), data)
    return None


def _relative_src(path: str, folder: Path) -> str | None:
    """``path`` as a URL relative to ``folder`` when the file is in it (what Jupyter serves)."""
    target = Path(path).resolve()
    try:
        relative = target.relative_to(folder)
    except ValueError:
        return None
    return quote(relative.as_posix()) if target.is_file() else None


def _folder(folder: str | os.PathLike[str] | None) -> Path:
    return Path(folder if folder is not None else os.getcwd()).resolve()


def _read_file(path: str) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except OSError:
        return None


async def _source(
    image: Image, path: str | None, folder: Path, max_size: int, embed_limit: int
) -> str | None:
    """The ``<img src>`` for one image: its relative path, a ``data:`` thumbnail, or None."""
    from ._errors import RadientError

    data: bytes | None = None
    if path is not None:
        src = await anyio.to_thread.run_sync(_relative_src, path, folder)
        if src is not None:
            return src
        data = await anyio.to_thread.run_sync(_read_file, path)
    if data is None:
        try:
            data = await image.read()
        except RadientError:
            return None
    return await anyio.to_thread.run_sync(
        lambda: thumbnail_uri(data, image.content_type, max_size=max_size, embed_limit=embed_limit)
    )


async def gallery(
    items: Iterable[GalleryItem],
    *,
    title: str | None = None,
    folder: str | os.PathLike[str] | None = None,
    max_size: int = _THUMB,
    embed_limit: int = _EMBED_LIMIT,
) -> Gallery:
    """Results or batch outcomes as a ``Gallery`` in input order that a saved notebook keeps.

    Saved files are shown by their path relative to ``folder`` (the notebook's folder: by
    default the working directory, where a Jupyter kernel starts); other images are read with
    ``await image.read()`` and embedded as ``data:`` thumbnails of at most ``max_size`` px
    (see the module docstring for the fallbacks). Call it inside the session's ``async with``
    block unless every image is saved.
    """
    from ._validate import argument, integer

    argument("max_size", max_size, integer(1))
    argument("embed_limit", embed_limit, integer(0))
    base = await anyio.to_thread.run_sync(_folder, folder)
    entries = _entries(items)
    sources: dict[tuple[int, int], str | None] = {}
    limiter = anyio.CapacityLimiter(_READERS)

    async def fill(key: tuple[int, int], image: Image, path: str | None) -> None:
        async with limiter:
            sources[key] = await _source(image, path, base, max_size, embed_limit)

    async with anyio.create_task_group() as group:
        for e, entry in enumerate(entries):
            for i, image in enumerate(entry.images):
                path = entry.paths[i] if i < len(entry.paths) else None
                group.start_soon(fill, (e, i), image, path)

    figures = []
    for e, entry in enumerate(entries):
        if entry.error is not None:
            figures.append(_failed(entry))
        for i, image in enumerate(entry.images):
            src = sources[(e, i)]
            if src is not None:
                figures.append(_figure(_img(src), entry.caption))
            else:
                link = f'<a href="{html.escape(image.url, quote=True)}">image {i + 1}</a>'
                figures.append(_figure(link, entry.caption))
    count = sum(len(entry.images) for entry in entries)
    return Gallery(html=_grid(figures, title), count=count)
