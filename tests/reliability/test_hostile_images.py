"""An image is saved or returned only if its bytes are an image; its type names the file."""

from __future__ import annotations

import json
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import radient_async as ra

pytestmark = pytest.mark.anyio

KEY = "sk-hostile-images-5f1c"
POLL = ra.PollPolicy(first_delay=0.01, min_interval=0.01, max_interval=0.05, timeout=5)
PNG = (
    b"\x89PNG\r\n\x1a\n"
    + b"\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x00\x00\x00\x00:~\x9bU"
    + b"\x00\x00\x00\nIDAT"
    + zlib.compress(b"\x00\x00")[:10].ljust(10, b"\x00")
    + b"\x00\x00\x00\x00\x00\x00\x00\x00IEND\xaeB`\x82"
)
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64 + b"\xff\xd9"


async def server_with_image(
    hostile: Callable[..., Awaitable[Any]], body: bytes, content_type: str
) -> Any:
    async def generate(request: web.Request) -> web.Response:
        origin = f"{request.scheme}://{request.host}"
        job = {
            "request_id": "imgreq_hostile",
            "status": "COMPLETED",
            "images": [{"url": f"{origin}/files/x", "content_type": content_type}],
        }
        return web.Response(text=json.dumps(job), content_type="application/json")

    async def image(request: web.Request) -> web.Response:
        return web.Response(body=body, headers={"Content-Type": content_type})

    return await hostile({"POST /v1/images/generate": generate, "GET /files/x": image})


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<html><body>login first</body></html>", "image/png"),
        (b"#!/bin/sh\nrm -rf ~\n", "text/x-sh"),
        (b"", "image/png"),
        (b"\x89PN", "image/png"),  # shorter than any magic number
    ],
    ids=["html", "shell script", "empty", "short"],
)
async def test_a_body_that_is_not_an_image_is_refused(
    hostile: Any, tmp_path: Path, body: bytes, content_type: str
) -> None:
    server = await server_with_image(hostile, body, content_type)
    async with ra.Session(KEY, server.base_url, poll=POLL) as session:
        result = await session.generate("x")
        with pytest.raises(ra.DownloadError, match="not a PNG, JPEG, GIF or WebP"):
            await result.download(tmp_path)
        with pytest.raises(ra.DownloadError, match="not a PNG, JPEG, GIF or WebP"):
            await result.images[0].read()
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary file


@pytest.mark.parametrize(
    ("body", "content_type", "suffix"),
    [(PNG, "text/x-sh", ".png"), (JPEG, "image/png", ".jpg"), (PNG, "text/html", ".png")],
    ids=["png said sh", "jpeg said png", "png said html"],
)
async def test_the_bytes_not_the_server_name_the_file_type(
    hostile: Any, tmp_path: Path, body: bytes, content_type: str, suffix: str
) -> None:
    server = await server_with_image(hostile, body, content_type)
    async with ra.Session(KEY, server.base_url, poll=POLL) as session:
        result = await session.generate("x")
        (path,) = await result.download(tmp_path)
        assert await result.images[0].read() == body
    assert Path(path).suffix == suffix
    assert Path(path).read_bytes() == body
    assert [p.name for p in tmp_path.iterdir()] == [Path(path).name]


def real_image(fmt: str) -> bytes:
    """A small real image in ``fmt``, as an encoder writes it (trailer and all)."""
    import io

    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.effect_noise((48, 48), 60).convert("RGB").save(buffer, format=fmt)
    return buffer.getvalue()


async def streaming_server(hostile: Callable[..., Awaitable[Any]], body: bytes) -> Any:
    """A server whose image has no Content-Length: chunked, then a clean end of stream."""

    async def generate(request: web.Request) -> web.Response:
        origin = f"{request.scheme}://{request.host}"
        job = {
            "request_id": "imgreq_cut",
            "status": "COMPLETED",
            "images": [{"url": f"{origin}/x"}],
        }
        return web.json_response(job)

    async def image(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(body), 1000):
            await response.write(body[start : start + 1000])
        await response.write_eof()
        return response

    return await hostile({"POST /v1/images/generate": generate, "GET /x": image})


FORMATS = ["PNG", "JPEG", "GIF", "WEBP"]


@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_body_cut_short_without_a_length_is_detected_by_its_format(
    hostile: Any, tmp_path: Path, fmt: str
) -> None:
    whole = real_image(fmt)
    server = await streaming_server(hostile, whole[: len(whole) * 2 // 3])
    retry = ra.RetryPolicy(max_retries=2, initial_backoff=0.01, max_backoff=0.01)
    async with ra.Session(KEY, server.base_url, poll=POLL, retry=retry) as session:
        result = await session.generate("x")
        with pytest.raises(ra.IntegrityError, match="cut short"):
            await result.download(tmp_path)
        with pytest.raises(ra.IntegrityError, match="cut short"):
            await result.images[0].read()
    assert list(tmp_path.iterdir()) == []
    # a cut transfer is worth retrying: each read tried three times, then gave up
    assert [seen.path for seen in server.seen].count("/x") == 6


@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_whole_body_without_a_length_is_saved(
    hostile: Any, tmp_path: Path, fmt: str
) -> None:
    whole = real_image(fmt)
    server = await streaming_server(hostile, whole)
    async with ra.Session(KEY, server.base_url, poll=POLL) as session:
        result = await session.generate("x")
        [path] = await result.download(tmp_path)
        assert await result.images[0].read() == whole
    assert Path(path).read_bytes() == whole
