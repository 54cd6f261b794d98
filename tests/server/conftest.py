"""Fixtures for the local server's tests: servers on loopback and a raw HTTP client for them.

The server is spoken to in plain HTTP (an aiohttp client), never through the SDK, so these tests
pin down the wire contract itself. The modules here are not a package: they share fixtures (and
the ``Api`` helper they hand out), not imports.
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import attrs
import pytest
from multidict import CIMultiDictProxy
from PIL import Image

from radient_async.server import Controls, LocalServer, ServerConfig, Stats

KEY = "server-test-key"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@attrs.frozen
class Reply:
    """One HTTP answer, fully read."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error(self) -> tuple[int, str, str | None]:
        """(status, code, field) of a JSON error answer, after checking its shape."""
        data = self.json()
        assert set(data) == {"error", "code", "field"}, data
        assert isinstance(data["error"], str)
        assert data["error"]
        return self.status, data["code"], data["field"]


@attrs.define
class Api:
    """A started ``LocalServer`` and an HTTP client that speaks to it (with the key by default)."""

    server: LocalServer
    http: aiohttp.ClientSession
    key: str | None = KEY

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def stats(self) -> Stats:
        return self.server.stats

    @property
    def controls(self) -> Controls:
        return self.server.controls

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    async def request(
        self, method: str, url: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> Reply:
        async with self.http.request(method, url, headers=headers, **kwargs) as response:
            return Reply(response.status, response.headers, await response.read())

    async def generate(
        self, body: Any, *, headers: dict[str, str] | None = None, auth: bool = True
    ) -> Reply:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        data: bytes | io.BytesIO = io.BytesIO(raw) if len(raw) > 512 * 1024 else raw
        sent = {
            "Content-Type": "application/json",
            **(self.auth if auth else {}),
            **(headers or {}),
        }
        return await self.request(
            "POST", f"{self.base_url}/images/generate", data=data, headers=sent
        )

    async def job(self, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Generate and return the job JSON, asserting a 200."""
        reply = await self.generate(body, **kwargs)
        assert reply.status == 200, reply.body
        job: dict[str, Any] = reply.json()
        return job

    async def status(self, request_id: str | None, **params: str) -> Reply:
        query = dict(params)
        if request_id is not None:
            query["request_id"] = request_id
        return await self.request(
            "GET", f"{self.base_url}/images/status", params=query, headers=self.auth
        )

    async def providers(self, headers: dict[str, str] | None = None) -> Reply:
        sent = self.auth if headers is None else headers
        return await self.request("GET", f"{self.base_url}/images/providers", headers=sent)

    async def get(self, url: str, headers: dict[str, str] | None = None) -> Reply:
        return await self.request("GET", url, headers=headers)

    async def wait(self, request_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """Poll until the job is no longer PROCESSING."""
        import asyncio

        deadline = time.monotonic() + timeout
        while True:
            reply = await self.status(request_id)
            assert reply.status == 200, reply.body
            job: dict[str, Any] = reply.json()
            if job["status"] != "PROCESSING" or time.monotonic() > deadline:
                return job
            await asyncio.sleep(0.02)

    async def image(self, job: dict[str, Any], index: int = 0) -> Image.Image:
        """Download (or decode an inline) image of a finished job and decode it fully."""
        url = job["images"][index]["url"]
        if url.startswith("data:"):
            return decode_png(base64.b64decode(url.split(",", 1)[1]))
        reply = await self.get(url)
        assert reply.status == 200, reply.body
        return decode_png(reply.body)


def decode_png(data: bytes) -> Image.Image:
    """Decode PNG bytes fully (raising if they are not a valid PNG)."""
    with Image.open(io.BytesIO(data)) as picture:
        assert picture.format == "PNG"
        picture.load()
        return picture.copy()


StartServer = Callable[..., Awaitable[Api]]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def start_server(http: aiohttp.ClientSession) -> AsyncIterator[StartServer]:
    """``api = await start_server(latency=0.2, ...)``: a LocalServer with the test key."""
    servers: list[LocalServer] = []

    async def start(**config: Any) -> Api:
        config.setdefault("api_key", KEY)
        server = LocalServer(ServerConfig(**config))
        servers.append(server)
        await server.start()
        return Api(server, http, config["api_key"])

    try:
        yield start
    finally:
        for server in servers:
            await server.stop()


@pytest.fixture
async def api(start_server: StartServer) -> Api:
    """A default server (key required, no latency, seeded randomness)."""
    return await start_server(seed=3)


@pytest.fixture
def tools() -> Any:
    """Plain helpers for images, shared through a fixture (the modules are not a package)."""
    return Tools


class Tools:
    """Image helpers: make source images, encode them, compare pictures."""

    TINY: dict[str, int] = {"width": 32, "height": 32}  # noqa: RUF012 - read-only by convention

    @staticmethod
    def encode(picture: Image.Image, fmt: str = "PNG") -> bytes:
        buffer = io.BytesIO()
        picture.save(buffer, format=fmt)
        return buffer.getvalue()

    @staticmethod
    def solid(color: tuple[int, int, int], size: tuple[int, int] = (32, 32)) -> Image.Image:
        return Image.new("RGB", size, color)

    @staticmethod
    def data_uri(data: bytes, mime: str = "image/png") -> str:
        return f"data:{mime};base64," + base64.b64encode(data).decode()

    @staticmethod
    def distance(a: Image.Image, b: Image.Image) -> float:
        """Mean absolute difference per channel value (0..255) of two pictures at a's size."""
        pa = a.convert("RGB").tobytes()
        pb = b.convert("RGB").resize(a.size).tobytes()
        return sum(abs(x - y) for x, y in zip(pa, pb, strict=True)) / len(pa)

    @staticmethod
    def png_size(data: bytes) -> tuple[int, int]:
        """Width and height from a PNG's IHDR, without decoding it."""
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
