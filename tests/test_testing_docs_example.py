"""The example in docs/testing.md, kept runnable: a user's FastAPI endpoint tested with the plugin.

If this file changes, update docs/testing.md to match (and the other way round).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI, HTTPException

import radient_async
from radient_async.server import ThreadedServer


def create_app(api_key: str, base_url: str) -> FastAPI:
    """The user's application: one Session for the app's lifetime."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with radient_async.Session(api_key, base_url) as session:
            app.state.radient = session
            yield

    app = FastAPI(lifespan=lifespan)

    @app.post("/avatars")
    async def make_avatar(prompt: str) -> dict[str, list[str]]:
        try:
            result = await app.state.radient.generate(prompt, image_size="square")
        except radient_async.JobFailed as exc:
            raise HTTPException(status_code=502, detail=exc.error) from None
        return {"urls": [image.url for image in result.images]}

    return app


@pytest.mark.anyio
async def test_avatar_endpoint_returns_image_urls(radient_server: ThreadedServer) -> None:
    app = create_app(radient_server.api_key or "", radient_server.base_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            response = await client.post("/avatars", params={"prompt": "a smiling robot"})
    assert response.status_code == 200
    assert len(response.json()["urls"]) == 1
    assert radient_server.stats.generate_bodies[-1]["prompt"] == "a smiling robot"


@pytest.mark.anyio
async def test_avatar_endpoint_maps_a_failed_generation_to_502(
    radient_server: ThreadedServer,
) -> None:
    radient_server.controls.fail_next(1, error="content policy")
    app = create_app(radient_server.api_key or "", radient_server.base_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            response = await client.post("/avatars", params={"prompt": "anything"})
    assert response.status_code == 502
    assert response.json()["detail"] == "content policy"
