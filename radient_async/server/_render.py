"""Deterministic procedural images: same (provider, prompt, seed, index, size), same PNG.

Each prompt picks its own palette and shapes from a hash, so different prompts visibly differ.
Drawing happens on a small canvas that is then scaled up, which keeps a 1024×1024 image cheap.
Image-to-image blends the source into the result by ``strength`` (1.0 keeps the source).
"""

from __future__ import annotations

import hashlib
import io
import random
import struct
import zlib
from collections import OrderedDict

import attrs
from PIL import Image, ImageDraw, ImageFilter

__all__ = ["RenderKey", "Renderer", "pad_png"]

_CANVAS = 96


@attrs.frozen
class RenderKey:
    """Everything that determines an image's bytes."""

    provider: str
    prompt: str
    seed: int
    index: int
    width: int
    height: int
    source_digest: str | None = None
    strength: float | None = None


def _rng(key: RenderKey) -> random.Random:
    text = f"{key.provider}\0{key.prompt}\0{key.seed}\0{key.index}"
    return random.Random(hashlib.sha256(text.encode()).digest())


def _palette(rng: random.Random) -> list[tuple[int, int, int]]:
    return [(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(6)]


def _draw(key: RenderKey) -> Image.Image:
    rng = _rng(key)
    colors = _palette(rng)
    aspect = key.width / key.height
    cw = _CANVAS if aspect >= 1 else max(8, round(_CANVAS * aspect))
    ch = _CANVAS if aspect <= 1 else max(8, round(_CANVAS / aspect))
    top, bottom = colors[0], colors[1]
    canvas = Image.new("RGB", (cw, ch))
    draw = ImageDraw.Draw(canvas)
    for y in range(ch):
        t = y / max(1, ch - 1)
        draw.line(
            [(0, y), (cw, y)],
            fill=tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)),
        )
    sketch = key.provider == "sketch"
    for _ in range(rng.randint(4, 9)):
        x0, y0 = rng.uniform(-0.2, 1.0) * cw, rng.uniform(-0.2, 1.0) * ch
        x1, y1 = x0 + rng.uniform(0.1, 0.6) * cw, y0 + rng.uniform(0.1, 0.6) * ch
        color = rng.choice(colors[2:])
        if sketch:
            draw.line([(x0, y0), (x1, y1)], fill=(20, 20, 20), width=rng.randint(1, 3))
        elif rng.random() < 0.5:
            draw.ellipse([x0, y0, x1, y1], fill=color)
        else:
            draw.rectangle([x0, y0, x1, y1], fill=color)
    if sketch:
        canvas = canvas.convert("L").convert("RGB")
    canvas = canvas.filter(ImageFilter.SMOOTH)
    return canvas.resize((key.width, key.height), Image.Resampling.BILINEAR)


def pad_png(data: bytes, min_bytes: int) -> bytes:
    """Grow a PNG to at least ``min_bytes`` with a private ancillary chunk; still a valid PNG."""
    missing = min_bytes - len(data)
    if missing <= 0:
        return data
    payload = b"\0" * max(0, missing - 12)
    chunk_type = b"raDp"  # ancillary, private, reserved bit clear, safe to copy
    chunk = (
        struct.pack(">I", len(payload))
        + chunk_type
        + payload
        + struct.pack(">I", zlib.crc32(chunk_type + payload) & 0xFFFFFFFF)
    )
    iend = data.rfind(b"IEND") - 4
    return data[:iend] + chunk + data[iend:]


class Renderer:
    """Renders PNGs on demand and keeps recent ones in a bounded LRU cache."""

    def __init__(self, *, min_bytes: int = 0, cache_bytes: int = 256 * 1024 * 1024) -> None:
        self._min_bytes = min_bytes
        self._cache: OrderedDict[RenderKey, bytes] = OrderedDict()
        self._cache_bytes = cache_bytes
        self._held = 0
        self.rendered = 0

    def cached(self, key: RenderKey) -> bytes | None:
        data = self._cache.get(key)
        if data is not None:
            self._cache.move_to_end(key)
        return data

    def render(self, key: RenderKey, source: Image.Image | None = None) -> bytes:
        """The PNG for ``key`` (blended with ``source`` for image-to-image); cached."""
        data = self.cached(key)
        if data is not None:
            return data
        picture = _draw(key)
        if source is not None and key.strength is not None:
            base = source.convert("RGB").resize(picture.size, Image.Resampling.BILINEAR)
            picture = Image.blend(picture, base, float(key.strength))
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG", compress_level=1)
        data = pad_png(buffer.getvalue(), self._min_bytes)
        self.rendered += 1
        self._store(key, data)
        return data

    def _store(self, key: RenderKey, data: bytes) -> None:
        self._cache[key] = data
        self._held += len(data)
        while self._held > self._cache_bytes and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._held -= len(old)

    def forget(self, request_id_keys: list[RenderKey]) -> None:
        """Drop cached images of expired jobs."""
        for key in request_id_keys:
            data = self._cache.pop(key, None)
            if data is not None:
                self._held -= len(data)
