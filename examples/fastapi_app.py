"""A FastAPI backend that awaits generations inside its endpoints.

One ``Session`` is opened in the app's lifespan and shared by every request; ``Limits(jobs=...)``
caps how many generations run at once across all requests (the rest wait their turn).

    RADIENT_API_KEY=... uvicorn examples.fastapi_app:app
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

import radient_async

MAX_CONCURRENT_GENERATIONS = int(os.environ.get("MAX_CONCURRENT_GENERATIONS", "32"))


class ImageRequest(BaseModel):
    prompt: str
    num_images: int = 1
    image_size: str = "square"


class ImageResponse(BaseModel):
    request_id: str
    urls: list[str]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    limits = radient_async.Limits(jobs=MAX_CONCURRENT_GENERATIONS)
    async with radient_async.Session(limits=limits) as session:
        app.state.radient = session
        yield


app = FastAPI(lifespan=lifespan)


@app.post("/images")
async def create_images(body: ImageRequest) -> ImageResponse:
    session: radient_async.Session = app.state.radient
    try:
        result = await session.generate(
            body.prompt, num_images=body.num_images, image_size=body.image_size
        )
    except radient_async.ValidationError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    except radient_async.JobFailed as exc:
        raise HTTPException(status_code=502, detail=exc.error) from None
    except radient_async.RadientError as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from None
    return ImageResponse(request_id=result.request_id, urls=[i.url for i in result.images])
