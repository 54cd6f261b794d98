"""HTML for Jupyter: a result shows as a grid of its images with the prompt as caption."""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._models import GenerationResult, Image

__all__ = ["gallery_html", "image_html", "result_html"]

_THUMB = 256


def image_html(image: Image, *, caption: str | None = None) -> str:
    """One image as a figure; its URL (or ``data:`` URI) is the source, nothing is fetched here."""
    src = html.escape(image.url, quote=True)
    size = f"{image.width}×{image.height}" if image.width and image.height else ""
    text = html.escape(caption if caption is not None else size)
    return (
        f'<figure style="display:inline-block;margin:4px;max-width:{_THUMB}px">'
        f'<img src="{src}" loading="lazy" style="max-width:{_THUMB}px;max-height:{_THUMB}px"/>'
        f'<figcaption style="font-size:small;word-wrap:break-word">{text}</figcaption></figure>'
    )


def result_html(result: GenerationResult) -> str:
    """A result's images side by side, captioned with the prompt (or the request id)."""
    caption = result.prompt or result.request_id
    return gallery_html([result], title=None) if result.images else html.escape(caption)


def gallery_html(results: Iterable[GenerationResult], *, title: str | None = None) -> str:
    """Many results as one wrapping grid of thumbnails, each captioned with its prompt."""
    figures = [
        image_html(image, caption=result.prompt or result.request_id)
        for result in results
        for image in result.images
    ]
    heading = f"<h3>{html.escape(title)}</h3>" if title else ""
    return f'{heading}<div style="display:flex;flex-wrap:wrap">{"".join(figures)}</div>'
