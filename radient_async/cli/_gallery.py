"""``radient batch --gallery``: a static HTML page of every saved image with its prompt.

The page is the SDK's own ``gallery_html`` grid, with each image's source a URL relative to the
page, so the page and the image files can be moved or served together.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import quote

from radient_async._display import gallery_html
from radient_async._models import GenerationResult, Image

__all__ = ["gallery_page", "write_gallery"]


def gallery_page(entries: Iterable[tuple[str, Sequence[str]]], page: str) -> str:
    """The HTML of a page at ``page`` showing each ``(prompt, image paths)`` entry."""
    base = Path(page).resolve().parent
    results = [
        GenerationResult(
            request_id="",
            prompt=prompt,
            images=tuple(Image(url=_relative_url(path, base)) for path in paths),
        )
        for prompt, paths in entries
    ]
    count = sum(len(result.images) for result in results)
    body = gallery_html(results, title=f"{count} images")
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8"><title>radient batch</title></head>\n'
        f'<body style="font-family:sans-serif">{body}</body></html>\n'
    )


def _relative_url(path: str, base: Path) -> str:
    target = Path(path).resolve()
    try:
        return quote(Path(os.path.relpath(target, base)).as_posix())
    except ValueError:  # another drive (Windows): no relative path exists
        return target.as_uri()


def write_gallery(page: str, entries: Iterable[tuple[str, Sequence[str]]]) -> None:
    """Write ``gallery_page`` to ``page`` atomically (a reader never sees half a page)."""
    target = Path(page)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        temp.write_text(gallery_page(entries, page), encoding="utf-8")
        os.replace(temp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
