"""Jobs: failure, idempotency, expiry, the live-job limit, latency, poll hints, and their cost."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest
from PIL import Image

pytestmark = pytest.mark.anyio

TINY = {"width": 32, "height": 32}


async def test_fail_marker_in_the_prompt_fails_the_job(api: Any) -> None:
    job = await api.job({"prompt": "please [FAIL] now", "sync_mode": True, "image_size": TINY})
    assert (job["status"], job["images"]) == ("FAILED", None)
    assert "[fail]" in job["error"]
    status = (await api.status(job["request_id"])).json()
    assert (status["status"], status["error"]) == ("FAILED", job["error"])


async def test_async_failure_reports_the_error_only_when_finished(start_server: Any) -> None:
    api = await start_server(latency=0.1)
    job = await api.job({"prompt": "[fail]", "image_size": TINY})
    assert (job["status"], job["error"]) == ("PROCESSING", None)
    done = await api.wait(job["request_id"])
    assert done["status"] == "FAILED"
    assert done["error"]


async def test_idempotency_key_replays_the_same_job(api: Any) -> None:
    key = {"Idempotency-Key": "abc-123"}
    first = await api.job({"prompt": "once", "image_size": TINY}, headers=key)
    second = await api.job({"prompt": "once", "image_size": TINY}, headers=key)
    other = await api.job({"prompt": "once", "image_size": TINY})
    assert first["request_id"] == second["request_id"] != other["request_id"]
    assert first["seed"] == second["seed"]
    assert api.stats.jobs_created == 2
    assert api.stats.idempotent_replays == 1
    assert api.stats.idempotency_keys == ["abc-123"]
    assert len(api.stats.generate_bodies) == 3


async def test_a_replay_in_sync_mode_waits_for_the_same_job(start_server: Any) -> None:
    api = await start_server(latency=0.2)
    key = {"Idempotency-Key": "sync-replay"}
    first = await api.job({"prompt": "p", "image_size": TINY}, headers=key)
    again = await api.job({"prompt": "p", "image_size": TINY, "sync_mode": True}, headers=key)
    assert again["request_id"] == first["request_id"]
    assert again["status"] == "COMPLETED"


async def test_concurrent_twins_with_a_source_make_one_job(api: Any, tools: Any) -> None:
    noise = Image.frombytes("RGB", (600, 600), os.urandom(600 * 600 * 3))
    big = tools.encode(noise)  # > 1 MiB: parsed, hashed and decoded in worker threads
    assert len(big) > 1 << 20
    body = {"prompt": "twins", "image_size": TINY, "source_url": tools.data_uri(big)}
    key = {"Idempotency-Key": "twin"}
    replies = await asyncio.gather(*(api.generate(body, headers=key) for _ in range(3)))
    assert {r.status for r in replies} == {200}
    assert len({r.json()["request_id"] for r in replies}) == 1
    assert api.stats.jobs_created == 1
    assert api.stats.idempotent_replays == 2


async def test_jobs_files_and_keys_expire_after_the_ttl(start_server: Any) -> None:
    api = await start_server(job_ttl=0.2)
    key = {"Idempotency-Key": "ttl"}
    job = await api.job(
        {"prompt": "short-lived", "sync_mode": True, "image_size": TINY}, headers=key
    )
    url = job["images"][0]["url"]
    assert (await api.get(url)).status == 200
    assert api.server.state.images.held_bytes > 0
    await asyncio.sleep(0.3)
    assert (await api.status(job["request_id"])).error == (404, "not_found", "request_id")
    assert (await api.get(url)).status == 404
    assert api.server.state.images.held_bytes == 0
    again = await api.job({"prompt": "short-lived", "image_size": TINY}, headers=key)
    assert again["request_id"] != job["request_id"]
    assert api.stats.idempotent_replays == 0


async def test_ttl_counts_from_the_end_of_the_job(start_server: Any) -> None:
    api = await start_server(job_ttl=0.2, latency=0.3)
    job = await api.job({"prompt": "p", "image_size": TINY})
    await asyncio.sleep(0.35)
    assert (await api.status(job["request_id"])).json()["status"] == "COMPLETED"


async def test_the_periodic_sweeper_drops_jobs_nobody_asks_for(start_server: Any) -> None:
    api = await start_server(job_ttl=0.1)
    for _ in range(5):
        await api.job({"prompt": "forgotten", "image_size": TINY})
    assert len(api.server.state.jobs) == 5
    deadline = time.monotonic() + 2
    while len(api.server.state.jobs) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert len(api.server.state.jobs) == 0


async def test_live_job_limit_answers_429(start_server: Any) -> None:
    api = await start_server(max_live_jobs=2, latency=10)
    for _ in range(2):
        await api.job({"prompt": "p", "image_size": TINY})
    reply = await api.generate({"prompt": "p", "image_size": TINY})
    assert reply.error == (429, "too_many_jobs", None)
    assert reply.headers["Retry-After"] == "1"
    assert api.stats.live_jobs_refused == 1
    assert api.stats.jobs_created == 2


async def test_live_job_limit_frees_up_as_jobs_expire(start_server: Any) -> None:
    api = await start_server(max_live_jobs=1, job_ttl=0.1)
    await api.job({"prompt": "p", "image_size": TINY})
    assert (await api.generate({"prompt": "p"})).status == 429
    await asyncio.sleep(0.15)
    assert (await api.generate({"prompt": "p", "image_size": TINY})).status == 200


async def test_latency_with_jitter_stays_in_its_band(start_server: Any) -> None:
    api = await start_server(latency=0.3, latency_jitter=0.1, seed=1)
    state = api.server.state
    durations = [state.job_duration() for _ in range(200)]
    assert 0.2 <= min(durations) < 0.23
    assert 0.37 < max(durations) <= 0.4


async def test_poll_hint_tells_when_the_job_should_be_done(start_server: Any) -> None:
    api = await start_server(poll_hint=True, latency=0.4)
    reply = await api.generate({"prompt": "hint", "image_size": TINY})
    first_hint = int(reply.headers["poll-after-ms"])
    assert 300 < first_hint <= 400
    status = await api.status(reply.json()["request_id"])
    assert 1 <= int(status.headers["poll-after-ms"]) <= first_hint
    await asyncio.sleep(first_hint / 1000 + 0.02)
    done = await api.status(reply.json()["request_id"])
    assert done.json()["status"] == "COMPLETED"
    assert "poll-after-ms" not in done.headers


async def test_no_poll_hint_unless_configured(start_server: Any) -> None:
    api = await start_server(latency=0.4)
    reply = await api.generate({"prompt": "no hint", "image_size": TINY})
    assert "poll-after-ms" not in reply.headers
    assert "poll-after-ms" not in (await api.status(reply.json()["request_id"])).headers


async def test_ten_thousand_live_jobs_cost_no_tasks(start_server: Any) -> None:
    """Status is derived from the clock: running jobs add no task, timer or callback."""
    from radient_async.server._jobs import Job

    api = await start_server(latency=60)
    for _ in range(10):
        await api.job({"prompt": "p", "image_size": TINY})  # a few real ones...
    tasks = len(asyncio.all_tasks())
    state = api.server.state
    now = time.monotonic()
    for n in range(9_990):  # ...and the rest straight into the store, to keep the suite fast
        state.jobs.add(Job(f"imgreq_{n:024x}", "default", "p", 1, 32, 32, 1, now + 60, now + 3660))
    assert len(state.jobs) == 10_000
    assert len(asyncio.all_tasks()) == tasks
    loop = asyncio.get_running_loop()
    started = loop.time()
    for n in range(0, 9_990, 999):
        assert (await api.status(f"imgreq_{n:024x}")).json()["status"] == "PROCESSING"
    await api.job({"prompt": "one more", "image_size": TINY})
    assert loop.time() - started < 2
    assert len(asyncio.all_tasks()) == tasks
