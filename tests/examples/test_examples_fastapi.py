"""``examples/fastapi_app.py`` under uvicorn, against a local Radient server, called with httpx."""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import anyio
import httpx
import pytest
import uvicorn

from radient_async.server import LocalServer, ServerConfig

APP = Path(__file__).resolve().parents[2] / "examples" / "fastapi_app.py"
KEY = "fastapi-example-key"

pytestmark = pytest.mark.anyio


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fastapi_app_example", APP)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
async def radient() -> AsyncIterator[LocalServer]:
    async with LocalServer(ServerConfig(api_key=KEY, latency=0.3)) as server:
        yield server


@pytest.fixture
async def app_url(radient: LocalServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """The example app served by uvicorn (lifespan on) on an ephemeral loopback port."""
    monkeypatch.setenv("RADIENT_API_KEY", KEY)
    monkeypatch.setenv("RADIENT_BASE_URL", radient.base_url)
    monkeypatch.setenv("MAX_CONCURRENT_GENERATIONS", "2")
    config = uvicorn.Config(
        load_example().app, lifespan="on", log_level="warning", ws="none", http="h11"
    )
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign, assignment]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        async with anyio.create_task_group() as group:
            group.start_soon(server.serve, [sock])
            while not server.started:
                await anyio.sleep(0.01)
            yield f"http://127.0.0.1:{port}"
            server.should_exit = True


async def test_post_images_returns_urls_under_a_concurrency_cap(
    radient: LocalServer, app_url: str
) -> None:
    async with httpx.AsyncClient(base_url=app_url, timeout=30) as client:
        started = time.monotonic()
        responses: list[httpx.Response] = []

        async def post(i: int) -> None:
            body = {"prompt": f"a harbour, study {i}", "image_size": "square"}
            responses.append(await client.post("/images", json=body))

        async with anyio.create_task_group() as group:
            for i in range(6):
                group.start_soon(post, i)
        elapsed = time.monotonic() - started
        assert [r.status_code for r in responses] == [200] * 6
        urls = [url for r in responses for url in r.json()["urls"]]
        assert len(set(urls)) == 6
        image = await client.get(urls[0])  # the URLs are real, fetchable images
        assert image.headers["content-type"] == "image/png"
    # 6 jobs of 0.3 s at most 2 at a time take 3 rounds; without the cap they would take one.
    assert elapsed >= 0.85
    assert radient.stats.jobs_created == 6


async def test_errors_map_to_http_statuses(radient: LocalServer, app_url: str) -> None:
    async with httpx.AsyncClient(base_url=app_url, timeout=30) as client:
        bad_size = await client.post("/images", json={"prompt": "x", "image_size": "enormous"})
        failed = await client.post("/images", json={"prompt": "this will [fail]"})
        too_many = await client.post("/images", json={"prompt": "x", "num_images": 9})
    assert bad_size.status_code == 422
    assert "image_size" in bad_size.json()["detail"]
    assert failed.status_code == 502
    assert "[fail]" in failed.json()["detail"]
    assert too_many.status_code == 422  # refused by the app's own model, before the SDK
    assert radient.stats.jobs_created == 1
