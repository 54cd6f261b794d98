"""Deterministic procedural images: the same ``RenderKey``, the same PNG bytes.

Each (provider, prompt, seed, index) picks its own palette and shapes from a hash, so different
prompts visibly differ; ``sketch`` draws dark strokes on a grey wash instead of colour blocks.
Drawing happens on a canvas of at most 64 pixels a side that is then scaled up, and the PNG is
written directly with zlib level 1, which keeps even a 1024×1024 image cheap. Image-to-image blends
the source in by ``strength`` (1.0 is the source, 0.0 the prompt's own picture).
"""

from __future__ import annotations

import hashlib
import random
import struct
import zlib

import attrs
from PIL import Image, ImageDraw

__all__ = ["RenderKey", "encode_png", "pad_png", "render_png"]

_CANVAS = 64
_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Ancillary (lowercase 1st letter), private (2nd), reserved bit clear (3rd upper), safe to copy:
# every decoder skips it, so a padded file stays a valid PNG of the same picture.
_PAD_CHUNK = b"raDp"


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


def _canvas_size(width: int, height: int) -> tuple[int, int]:
    aspect = width / height
    cw = _CANVAS if aspect >= 1 else max(8, round(_CANVAS * aspect))
    ch = _CANVAS if aspect <= 1 else max(8, round(_CANVAS / aspect))
    return min(width, cw), min(height, ch)


def draw(key: RenderKey) -> Image.Image:
    """The prompt's picture at the key's size (RGB), without any source blended in."""
    rng = _rng(key)
    colors = [(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(6)]
    cw, ch = _canvas_size(key.width, key.height)
    sketch = key.provider == "sketch"
    gradient = Image.new("RGB", (1, 2))
    gradient.putpixel((0, 0), colors[0])
    gradient.putpixel((0, 1), colors[1])
    canvas = gradient.resize((cw, ch), Image.Resampling.BILINEAR)
    pen = ImageDraw.Draw(canvas)
    for _ in range(rng.randint(4, 9)):
        x0, y0 = rng.uniform(-0.2, 1.0) * cw, rng.uniform(-0.2, 1.0) * ch
        x1, y1 = x0 + rng.uniform(0.1, 0.6) * cw, y0 + rng.uniform(0.1, 0.6) * ch
        color = rng.choice(colors[2:])
        if sketch:
            pen.line([(x0, y0), (x1, y1)], fill=(20, 20, 20), width=rng.randint(1, 3))
        elif rng.random() < 0.5:
            pen.ellipse([x0, y0, x1, y1], fill=color)
        else:
            pen.rectangle([x0, y0, x1, y1], fill=color)
    if sketch:
        canvas = canvas.convert("L").convert("RGB")
    if canvas.size == (key.width, key.height):
        return canvas
    return canvas.resize((key.width, key.height), Image.Resampling.BILINEAR)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(payload, zlib.crc32(kind)) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def encode_png(picture: Image.Image) -> bytes:
    """An RGB image as a PNG, written directly with zlib (several times cheaper than Pillow's)."""
    rgb = picture if picture.mode == "RGB" else picture.convert("RGB")
    width, height = rgb.size
    raw = rgb.tobytes()
    stride = width * 3
    rows = b"".join(b"\0" + raw[y * stride : (y + 1) * stride] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        _SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows, 1))
        + _chunk(b"IEND", b"")
    )


def pad_png(data: bytes, min_bytes: int) -> bytes:
    """Grow a PNG to at least ``min_bytes`` with a private ancillary chunk before ``IEND``."""
    missing = min_bytes - len(data)
    if missing <= 0:
        return data
    chunk = _chunk(_PAD_CHUNK, bytes(max(0, missing - 12)))
    iend = len(data) - 12  # IEND is always the last 12 bytes of what encode_png writes
    return data[:iend] + chunk + data[iend:]


def render_png(key: RenderKey, source: Image.Image | None = None, min_bytes: int = 0) -> bytes:
    """The PNG for ``key``: drawn, blended with ``source`` by ``key.strength``, padded."""
    picture = draw(key)
    if source is not None and key.strength is not None:
        base = source if source.mode == "RGB" else source.convert("RGB")
        base = base.resize(picture.size, Image.Resampling.BILINEAR)
        picture = Image.blend(picture, base, key.strength)
    return pad_png(encode_png(picture), min_bytes)
