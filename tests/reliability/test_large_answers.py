"""Large answers are decoded off the event loop, so one huge body cannot stall every other job."""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

import pytest
from aiohttp import web

import radient_async as ra
from radient_async import _calls, _downloads

pytestmark = pytest.mark.anyio

KEY = "sk-large-answers-91b3"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x02" * 64 + b"\x00\x00\x00\x00IEND\xaeB`\x82"


def where_it_runs(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[bool]:
    """Record, for each call of ``module.name``, whether it ran on the event loop's thread."""
    calls: list[bool] = []
    original = getattr(module, name)
    loop_thread = threading.get_ident()

    def recording(*args: Any, **kwargs: Any) -> Any:
        calls.append(threading.get_ident() == loop_thread)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, recording)
    return calls


async def test_a_large_status_body_is_decoded_in_a_worker_thread(
    hostile: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_loop = where_it_runs(monkeypatch, _calls, "decode_json")
    padding = "x" * (_calls.PARSE_OFF_LOOP_BYTES + 10)

    async def answer(request: web.Request) -> web.Response:
        origin = f"{request.scheme}://{request.host}"
        job = {"request_id": "r1", "status": "COMPLETED", "images": [{"url": f"{origin}/i"}]}
        body = job if request.method == "POST" else {**job, "note": padding}
        return web.json_response(body)

    server = await hostile({"POST /v1/images/generate": answer, "GET /v1/images/status": answer})
    async with ra.Session(KEY, server.base_url) as session:
        await session.generate("small answer")
        assert on_loop == []  # small answers are decoded where they arrive
        result = await session.job("r1")
    assert result.request_id == "r1"
    assert on_loop == [False]


async def test_a_large_data_url_is_decoded_in_a_worker_thread(
    hostile: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_loop = where_it_runs(monkeypatch, _downloads, "decode_data_url")
    big = PNG[:-12] + b"\x00" * (300 * 1024) + PNG[-12:]
    urls = [f"data:image/png;base64,{base64.b64encode(body).decode()}" for body in (PNG, big)]

    async def answer(request: web.Request) -> web.Response:
        images = [{"url": url} for url in urls]
        text = json.dumps({"request_id": "r1", "status": "COMPLETED", "images": images})
        return web.Response(text=text, content_type="application/json")

    server = await hostile({"POST /v1/images/generate": answer})
    async with ra.Session(KEY, server.base_url) as session:
        result = await session.generate("x", num_images=2)
        assert await result.images[0].read() == PNG
        assert await result.images[1].read() == big
    assert on_loop == [True, False]
