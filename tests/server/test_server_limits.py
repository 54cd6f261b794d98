"""Auth, the rate limit, runtime controls and counters."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

pytestmark = pytest.mark.anyio

TINY = {"width": 32, "height": 32}
KEY = "server-test-key"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing API key"),
        ({"Authorization": "Bearer wrong"}, "invalid API key"),
        ({"Authorization": KEY}, "invalid API key"),
        ({"Authorization": f"Basic {KEY}"}, "invalid API key"),
        ({"Authorization": f"Bearer {KEY}x"}, "invalid API key"),
        ({"Authorization": "Bearer"}, "invalid API key"),
        ({"Authorization": "Bearer ключ"}, "invalid API key"),
    ],
)
async def test_api_endpoints_need_the_key(api: Any, headers: dict[str, str], message: str) -> None:
    for reply in (
        await api.providers(headers=headers),
        await api.generate({"prompt": "p"}, auth=False, headers=headers),
        await api.request("GET", f"{api.base_url}/images/status?request_id=x", headers=headers),
    ):
        assert reply.error == (401, "unauthorized", None)
        assert message in reply.json()["error"]
        assert reply.headers["WWW-Authenticate"] == "Bearer"
        assert KEY not in reply.body.decode()
    assert api.stats.jobs_created == 0
    assert api.stats.provider_calls == api.stats.status_calls == 0


async def test_scheme_is_case_insensitive(api: Any) -> None:
    assert (await api.providers(headers={"Authorization": f"bearer {KEY}"})).status == 200
    assert (await api.providers(headers={"Authorization": f"BEARER  {KEY} "})).status == 200


async def test_no_auth_when_no_key_is_configured(start_server: Any) -> None:
    api = await start_server(api_key=None)
    assert api.server.api_key is None
    assert (await api.providers(headers={})).status == 200
    assert (await api.providers(headers={"Authorization": "Bearer anything"})).status == 200


async def test_the_key_is_never_shown(start_server: Any) -> None:
    api = await start_server(api_key="sk-very-secret")
    assert "sk-very-secret" not in repr(api.server.config)
    assert "sk-very-secret" not in repr(api.server)


async def test_rate_limit_bursts_then_429s_with_retry_after(start_server: Any) -> None:
    api = await start_server(rate_limit=5)
    replies = [await api.providers() for _ in range(8)]
    assert [r.status for r in replies[:5]] == [200] * 5
    limited = [r for r in replies if r.status == 429]
    assert limited
    for reply in limited:
        assert reply.error == (429, "rate_limited", None)
        assert reply.headers["Retry-After"] == "1"
        assert 0 < int(reply.headers["retry-after-ms"]) <= 200
    assert api.stats.rate_limited == len(limited)
    wait = int(limited[-1].headers["retry-after-ms"]) / 1000
    await asyncio.sleep(wait + 0.01)
    assert (await api.providers()).status == 200


async def test_fractional_rate_waits_whole_seconds(start_server: Any) -> None:
    api = await start_server(rate_limit=0.5)
    assert (await api.providers()).status == 200
    reply = await api.providers()
    assert reply.status == 429
    assert reply.headers["Retry-After"] == "2"
    assert 1900 < int(reply.headers["retry-after-ms"]) <= 2000


async def test_rate_limit_spares_files_and_unauthorised_requests(start_server: Any) -> None:
    api = await start_server(rate_limit=2)
    job = await api.job({"prompt": "p", "sync_mode": True, "image_size": TINY})
    for _ in range(5):
        assert (await api.get(job["images"][0]["url"])).status == 200
        assert (await api.providers(headers={})).status == 401
    assert (await api.providers()).status == 200
    assert (await api.providers()).status == 429


async def test_set_rate_limit_at_runtime(api: Any) -> None:
    api.controls.set_rate_limit(1)
    assert [(await api.providers()).status for _ in range(2)] == [200, 429]
    api.controls.set_rate_limit(None)
    assert [(await api.providers()).status for _ in range(5)] == [200] * 5
    with pytest.raises(ValueError, match="rps"):
        api.controls.set_rate_limit(0)


async def test_require_key_at_runtime(api: Any) -> None:
    api.controls.require_key("new-key")
    assert api.server.api_key == "new-key"
    assert (await api.providers()).status == 401
    assert (await api.providers(headers={"Authorization": "Bearer new-key"})).status == 200
    api.controls.require_key(None)
    assert (await api.providers(headers={})).status == 200


async def test_fail_next_fails_the_next_jobs_with_the_error(api: Any) -> None:
    api.controls.fail_next(2, error="GPU on fire")
    body = {"prompt": "p", "sync_mode": True, "image_size": TINY}
    jobs = [await api.job(body) for _ in range(3)]
    assert [(j["status"], j["error"]) for j in jobs] == [
        ("FAILED", "GPU on fire"),
        ("FAILED", "GPU on fire"),
        ("COMPLETED", None),
    ]


async def test_force_status_reports_any_string(api: Any) -> None:
    job = await api.job({"prompt": "p", "image_size": TINY})
    api.controls.force_status("WEIRD", next_n=2)
    forced = [(await api.status(job["request_id"])).json() for _ in range(3)]
    assert [f["status"] for f in forced] == ["WEIRD", "WEIRD", "COMPLETED"]
    assert forced[0]["images"] == forced[2]["images"]  # the rest of the job is unchanged


async def test_set_latency_applies_to_new_jobs(api: Any) -> None:
    api.controls.set_latency(5.0)
    slow = await api.job({"prompt": "p", "image_size": TINY})
    assert (await api.status(slow["request_id"])).json()["status"] == "PROCESSING"
    api.controls.set_latency(0.0)
    fast = await api.job({"prompt": "p", "image_size": TINY})
    assert fast["status"] == "COMPLETED"
    assert (await api.status(slow["request_id"])).json()["status"] == "PROCESSING"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.fail_next(0), "n must be"),
        (lambda c: c.fail_next(1, error=""), "error"),
        (lambda c: c.set_latency(-1), "mean"),
        (lambda c: c.set_latency(1, jitter=-1), "jitter"),
        (lambda c: c.force_status("X", next_n=0), "next_n"),
        (lambda c: c.require_key(""), "key"),
    ],
)
async def test_bad_control_calls_are_refused(api: Any, call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(api.controls)


async def test_counters_and_snapshot(api: Any) -> None:
    body = {"prompt": "count me", "sync_mode": True, "image_size": TINY}
    job = await api.job(body, headers={"Idempotency-Key": "k1"})
    await api.job(body, headers={"Idempotency-Key": "k1"})
    await api.job(body, headers={"Idempotency-Key": "k2"})
    await api.status(job["request_id"])
    await api.providers()
    await api.get(job["images"][0]["url"])
    await api.generate({"prompt": ""})
    snapshot = api.stats.snapshot()
    json.dumps(snapshot)  # JSON-ready
    assert snapshot["jobs_created"] == 2
    assert snapshot["idempotent_replays"] == 1
    assert snapshot["idempotency_keys"] == ["k1", "k2"]
    assert snapshot["status_calls"] == snapshot["provider_calls"] == snapshot["downloads"] == 1
    assert snapshot["images_rendered"] == 1
    assert snapshot["requests"] == {"generate": 4, "status": 1, "providers": 1, "files": 1}
    assert snapshot["authorized_requests"] == {"generate": 4, "status": 1, "providers": 1}
    assert [b["prompt"] for b in snapshot["generate_bodies"]] == ["count me"] * 3 + [""]


async def test_generate_bodies_keep_the_last_hundred(api: Any) -> None:
    for n in range(105):
        await api.generate({"prompt": f"#{n}", "image_size": TINY})
    bodies = list(api.stats.generate_bodies)
    assert len(bodies) == 100
    assert (bodies[0]["prompt"], bodies[-1]["prompt"]) == ("#5", "#104")


async def test_reset_stats_zeroes_in_place(api: Any) -> None:
    stats = api.stats
    await api.job({"prompt": "p", "image_size": TINY}, headers={"Idempotency-Key": "k"})
    api.controls.inject("500", endpoints=["providers"])
    await api.providers()
    api.controls.reset_stats()
    assert stats is api.stats
    snapshot = stats.snapshot()
    assert snapshot["jobs_created"] == snapshot["faults"].get("500", 0) == 0
    assert snapshot["requests"] == {}
    assert snapshot["generate_bodies"] == snapshot["idempotency_keys"] == []


def test_generate_bodies_are_bounded_in_bytes_too() -> None:
    from radient_async.server import Stats

    stats = Stats()
    for n in range(10):
        stats.saw_body({"n": n}, 20 * 1024 * 1024)  # e.g. bodies carrying big data: URIs
    assert [b["n"] for b in stats.generate_bodies] == [7, 8, 9]
    stats.generate_bodies.clear()
    stats.saw_body({"n": "after a manual clear"}, 10)
    assert len(stats.generate_bodies) == 1
