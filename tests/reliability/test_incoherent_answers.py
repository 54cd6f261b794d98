"""A job answer is checked against the job asked for: done means images, and no more than asked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import radient_async as ra

pytestmark = pytest.mark.anyio

KEY = "sk-incoherent-7d21"
POLL = ra.PollPolicy(first_delay=0.01, min_interval=0.01, max_interval=0.02, timeout=10)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 64 + b"\x00\x00\x00\x00IEND\xaeB`\x82"


def job(status: str, **fields: Any) -> dict[str, Any]:
    return {"request_id": "r1", "status": status, **fields}


async def api_answering(hostile: Any, answers: list[dict[str, Any]]) -> tuple[Any, list[int]]:
    """Submit says PROCESSING; poll n gets ``answers[n]`` (the last repeats), ORIGIN filled in."""
    polls: list[int] = []

    async def submit(request: web.Request) -> web.Response:
        return web.json_response(job("PROCESSING"))

    async def status(request: web.Request) -> web.Response:
        polls.append(1)
        answer = json.dumps(answers[min(len(polls), len(answers)) - 1])
        origin = f"{request.scheme}://{request.host}"
        return web.Response(text=answer.replace("ORIGIN", origin), content_type="application/json")

    async def image(request: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    server = await hostile(
        {"POST /v1/images/generate": submit, "GET /v1/images/status": status, "GET /i.png": image}
    )
    return server, polls


@pytest.mark.parametrize(
    "answer",
    [job("COMPLETED"), job("COMPLETED", images=None), job("COMPLETED", images=[])],
    ids=["images missing", "images null", "images empty"],
)
async def test_completed_without_images_is_not_a_success(hostile: Any, answer: Any) -> None:
    server, polls = await api_answering(hostile, [answer])
    async with ra.Session(KEY, server.base_url, poll=POLL) as session:
        handle = await session.submit("x")
        with pytest.raises(ra.MalformedResponseError, match="COMPLETED but lists no images"):
            await handle
    assert len(polls) == 3  # looked again twice: a moment later it might be true


async def test_more_images_than_asked_for_writes_nothing(hostile: Any, tmp_path: Path) -> None:
    many = [{"url": "ORIGIN/i.png"}] * 5000
    server, _ = await api_answering(hostile, [job("COMPLETED", images=many)])
    async with ra.Session(KEY, server.base_url, poll=POLL) as session:
        outcomes = [o async for o in session.map(["x"], num_images=2, download_to=tmp_path)]
    assert isinstance(outcomes[0].error, ra.MalformedResponseError)
    assert "lists 5000 images; at most 2 were asked for" in str(outcomes[0].error)
    assert list(tmp_path.iterdir()) == []


async def test_a_re_attached_job_may_list_at_most_the_api_maximum(hostile: Any) -> None:
    nine = [{"url": "ORIGIN/i.png"}] * 9
    server, _ = await api_answering(hostile, [job("COMPLETED", images=nine)])
    async with ra.Session(KEY, server.base_url, poll=POLL) as session:
        with pytest.raises(ra.MalformedResponseError, match="at most 8"):
            await session.job("r1")


async def test_an_answer_that_becomes_true_is_believed(hostile: Any) -> None:
    images = [{"url": "ORIGIN/i.png"}]
    server, polls = await api_answering(
        hostile, [job("COMPLETED"), job("COMPLETED", images=images)]
    )
    async with ra.Session(KEY, server.base_url, poll=POLL) as session:
        result = await (await session.submit("x"))
        assert await result.images[0].read() == PNG
    assert len(polls) == 2


async def test_a_sync_answer_without_images_is_checked_by_polling(hostile: Any) -> None:
    calls: list[str] = []

    async def submit(request: web.Request) -> web.Response:
        calls.append("generate")
        return web.json_response(job("COMPLETED", images=[]))

    async def status(request: web.Request) -> web.Response:
        calls.append("status")
        origin = f"{request.scheme}://{request.host}"
        return web.json_response(job("COMPLETED", images=[{"url": f"{origin}/i.png"}]))

    server = await hostile({"POST /v1/images/generate": submit, "GET /v1/images/status": status})
    async with ra.Session(KEY, server.base_url, poll=POLL) as session:
        result = await session.generate("x", sync_mode=True)
    assert len(result.images) == 1
    assert calls == ["generate", "status"]


async def test_the_manifest_records_an_incoherent_job_as_unfinished(
    hostile: Any, tmp_path: Path
) -> None:
    server, _ = await api_answering(hostile, [job("COMPLETED", images=[])])
    manifest = tmp_path / "run.jsonl"
    async with ra.Session(KEY, server.base_url, poll=POLL) as session:
        [outcome] = [o async for o in session.map(["x"], manifest=manifest)]
    assert not outcome.ok
    entries = [json.loads(line) for line in manifest.read_text().splitlines()[1:]]
    assert entries[-1]["status"] == "unfinished"
    assert "no images" in entries[-1]["error"]
