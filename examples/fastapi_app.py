"""A FastAPI backend that awaits image generations inside its endpoints.

One ``Session`` is opened in the app's lifespan and shared by every request. ``Limits(jobs=N)``
caps the generations in flight across all requests: request N+1 waits for a free slot instead of
piling more jobs onto the API. Configuration is read when the app starts, not when it is imported.

    RADIENT_API_KEY=... uvicorn examples.fastapi_app:app
    curl -X POST localhost:8000/images -H 'content-type: application/json' \\
         -d '{"prompt": "a lighthouse at dusk"}'

Environment: RADIENT_API_KEY, RADIENT_BASE_URL (optional), MAX_CONCURRENT_GENERATIONS (32).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel, Field

import radient_async


class ImageRequest(BaseModel):
    prompt: str
    num_images: int = Field(default=1, ge=1, le=8)
    image_size: str = "square"


class ImageResponse(BaseModel):
    request_id: str
    urls: list[str]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the app's one session at startup; close it (and stop its pollers) at shutdown."""
    cap = int(os.environ.get("MAX_CONCURRENT_GENERATIONS", "32"))
    async with radient_async.Session(limits=radient_async.Limits(jobs=cap)) as session:
        app.state.radient = session
        yield


app = FastAPI(title="images", lifespan=lifespan)


@app.post("/images")
async def create_images(body: ImageRequest, request: Request) -> ImageResponse:
    """Generate and wait; answers with the image URLs, or a status saying what went wrong."""
    session: radient_async.Session = request.app.state.radient
    try:
        result = await session.generate(
            body.prompt, num_images=body.num_images, image_size=body.image_size, timeout=120
        )
    except radient_async.ValidationError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    except radient_async.JobFailed as exc:
        raise HTTPException(status_code=502, detail=exc.error) from None
    except radient_async.JobTimeout as exc:
        raise HTTPException(status_code=504, detail=str(exc)) from None
    except radient_async.RadientError as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from None
    return ImageResponse(request_id=result.request_id, urls=[i.url for i in result.images])
