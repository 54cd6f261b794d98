"""Deterministic procedural images: same (provider, prompt, seed, index, size), same PNG.

Each prompt picks its own palette and shapes from a hash, so different prompts visibly differ.
Drawing happens on a small canvas that is then scaled up, which keeps a 1024×1024 image cheap.
Image-to-image blends the source into the result by ``strength`` (1.0 keeps the source).
"""

from __future__ import annotations

import hashlib
import random
import struct
import zlib
from collections import OrderedDict

import attrs
from PIL import Image, ImageDraw

__all__ = ["RenderKey", "Renderer", "pad_png"]

_CANVAS = 64


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
    cw = min(key.width, _CANVAS if aspect >= 1 else max(8, round(_CANVAS * aspect)))
    ch = min(key.height, _CANVAS if aspect <= 1 else max(8, round(_CANVAS / aspect)))
    gradient = Image.new("RGB", (1, 2))
    gradient.putpixel((0, 0), colors[0])
    gradient.putpixel((0, 1), colors[1])
    canvas = gradient.resize((cw, ch), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(canvas)
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
    if canvas.size == (key.width, key.height):
        return canvas
    return canvas.resize((key.width, key.height), Image.Resampling.BILINEAR)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def encode_png(picture: Image.Image) -> bytes:
    """An RGB image as PNG, written directly with zlib (much cheaper than Pillow for small ones)."""
    rgb = picture.convert("RGB") if picture.mode != "RGB" else picture
    width, height = rgb.size
    raw = rgb.tobytes()
    stride = width * 3
    rows = b"".join(b"\0" + raw[y * stride : (y + 1) * stride] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows, 1))
        + _chunk(b"IEND", b"")
    )


def pad_png(data: bytes, min_bytes: int) -> bytes:
    """Grow a PNG to at least ``min_bytes`` with a private ancillary chunk; still a valid PNG."""
    missing = min_bytes - len(data)
    if missing <= 0:
        return data
    # ancillary, private, reserved bit clear, safe to copy: decoders skip it
    chunk = _chunk(b"raDp", b"\0" * max(0, missing - 12))
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
        data = pad_png(encode_png(picture), self._min_bytes)
        self.rendered += 1
        self._store(key, data)
        return data

    def _store(self, key: RenderKey, data: bytes) -> None:
        self._cache[key] = data
        self._held += len(data)
        while self._held > self._cache_bytes and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._held -= len(old)
