"""Fault injection: every kind, on the endpoints it targets, scripted or at a random rate."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from radient_async.server import FaultConfig

pytestmark = pytest.mark.anyio

TINY = {"width": 32, "height": 32}


async def test_injected_429_asks_to_retry_after(api: Any) -> None:
    api.controls.inject("429", endpoints=["providers"], retry_after=2.5)
    reply = await api.providers()
    assert reply.error == (429, "rate_limited", None)
    assert reply.headers["Retry-After"] == "3"
    assert reply.headers["retry-after-ms"] == "2500"
    assert (await api.providers()).status == 200
    assert api.stats.faults["429"] == 1
    assert api.stats.rate_limited == 0  # injected, not the rate limiter


@pytest.mark.parametrize("kind", ["500", "502"])
async def test_injected_500_and_502_have_html_bodies(api: Any, kind: str) -> None:
    api.controls.inject(kind, endpoints=["status"])
    job = await api.job({"prompt": "p", "image_size": TINY})
    reply = await api.status(job["request_id"])
    assert reply.status == int(kind)
    assert reply.headers["Content-Type"].startswith("text/html")
    assert reply.body.startswith(b"<!DOCTYPE html>")
    assert (await api.status(job["request_id"])).status == 200


async def test_injected_503_is_json_with_retry_after(api: Any) -> None:
    api.controls.inject("503", endpoints=["files"], retry_after=0)
    job = await api.job({"prompt": "p", "sync_mode": True, "image_size": TINY})
    reply = await api.get(job["images"][0]["url"])
    assert reply.error == (503, "unavailable", None)
    assert (reply.headers["Retry-After"], reply.headers["retry-after-ms"]) == ("0", "0")
    assert (await api.get(job["images"][0]["url"])).status == 200
    assert api.stats.downloads == 1


@pytest.mark.parametrize("kind", ["429", "500", "502", "503"])
async def test_faults_that_answer_instead_create_no_job(api: Any, kind: str) -> None:
    api.controls.inject(kind, endpoints=["generate"])
    reply = await api.generate({"prompt": "p", "image_size": TINY})
    assert reply.status == int(kind)
    assert api.stats.jobs_created == 0
    assert api.stats.requests["generate"] == 1


@pytest.mark.parametrize("kind", ["reset", "truncate"])
async def test_cut_generate_answers_still_create_the_job(api: Any, kind: str) -> None:
    """The client cannot know whether its job exists; its Idempotency-Key makes retrying safe."""
    key = {"Idempotency-Key": f"cut-{kind}"}
    api.controls.inject(kind, endpoints=["generate"])
    with pytest.raises(aiohttp.ClientError):
        await api.generate({"prompt": "p", "image_size": TINY}, headers=key)
    assert api.stats.jobs_created == 1
    assert api.stats.faults[kind] == 1
    job = await api.job({"prompt": "p", "image_size": TINY}, headers=key)
    assert job["request_id"] in api.server.state.jobs
    assert api.stats.jobs_created == 1
    assert api.stats.idempotent_replays == 1


async def test_reset_is_a_connection_reset(api: Any) -> None:
    job = await api.job({"prompt": "p", "sync_mode": True, "image_size": TINY})
    api.controls.inject("reset", endpoints=["files"])
    with pytest.raises(aiohttp.ClientError) as caught:
        await api.get(job["images"][0]["url"])
    assert isinstance(caught.value, (aiohttp.ClientPayloadError, aiohttp.ClientOSError))
    assert (await api.get(job["images"][0]["url"])).status == 200


async def test_truncated_file_announces_the_full_length(api: Any) -> None:
    job = await api.job({"prompt": "p", "sync_mode": True, "image_size": TINY})
    url = job["images"][0]["url"]
    full = (await api.get(url)).body
    api.controls.inject("truncate", endpoints=["files"])
    async with api.http.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/png"
        assert int(response.headers["Content-Length"]) == len(full)
        received = bytearray()

        async def read_all() -> None:
            async for chunk in response.content.iter_any():
                received.extend(chunk)

        with pytest.raises(aiohttp.ClientPayloadError):
            await read_all()
    assert 0 < len(received) < len(full)
    assert full.startswith(received)


async def test_truncated_json_is_cut_short(api: Any) -> None:
    api.controls.inject("truncate", endpoints=["providers"])
    async with api.http.get(f"{api.base_url}/images/providers", headers=api.auth) as response:
        assert response.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    assert (await api.providers()).json()["providers"]


async def test_slow_delays_the_answer_after_the_handler_ran(api: Any) -> None:
    api.controls.inject("slow", endpoints=["generate"], delay=0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    pending = asyncio.ensure_future(api.generate({"prompt": "p", "image_size": TINY}))
    await asyncio.sleep(0.1)
    assert api.stats.jobs_created == 1  # the job exists while the answer is held back
    reply = await pending
    assert reply.status == 200
    assert loop.time() - started >= 0.29
    assert api.stats.faults["slow"] == 1


async def test_next_n_counts_only_matching_endpoints(api: Any) -> None:
    api.controls.inject("503", next_n=2, endpoints=["providers"])
    job = await api.job({"prompt": "p", "image_size": TINY})  # generate is not targeted
    assert (await api.status(job["request_id"])).status == 200
    assert [(await api.providers()).status for _ in range(3)] == [503, 503, 200]


async def test_default_targets_every_endpoint_once(api: Any) -> None:
    api.controls.inject("500")
    assert (await api.providers()).status == 500
    assert (await api.providers()).status == 200


async def test_scripted_rate_until_cleared(api: Any) -> None:
    api.controls.inject("502", rate=1.0, endpoints=["providers"])
    assert [(await api.providers()).status for _ in range(3)] == [502] * 3
    api.controls.clear_faults()
    assert (await api.providers()).status == 200


async def test_scripted_rules_apply_in_order(api: Any) -> None:
    api.controls.inject("429", endpoints=["providers"], retry_after=0)
    api.controls.inject("503", endpoints=["providers"], retry_after=0)
    assert [(await api.providers()).status for _ in range(3)] == [429, 503, 200]


async def test_random_faults_at_the_configured_rate(start_server: Any) -> None:
    faults = FaultConfig(rate=0.5, kinds=("503", "500"), endpoints=("providers",))
    api = await start_server(seed=11, faults=faults)
    codes = [(await api.providers()).status for _ in range(80)]
    broken = sum(code != 200 for code in codes)
    assert 20 < broken < 60
    assert {c for c in codes if c != 200} == {500, 503}
    assert api.stats.faults["503"] + api.stats.faults["500"] == broken
    job = await api.job({"prompt": "generate is not targeted", "image_size": TINY})
    assert job["status"] == "COMPLETED"


async def test_random_slow_faults_use_the_configured_delay(start_server: Any) -> None:
    faults = FaultConfig(rate=1.0, kinds=("slow",), endpoints=("providers",), slow_delay=0.2)
    api = await start_server(faults=faults)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert (await api.providers()).status == 200
    assert loop.time() - started >= 0.19


async def test_random_faults_are_reproducible_with_a_seed(start_server: Any) -> None:
    faults = FaultConfig(rate=0.3, kinds=("503",), endpoints=("providers",))
    runs = []
    for _ in range(2):
        api = await start_server(seed=5, faults=faults)
        runs.append([(await api.providers()).status for _ in range(30)])
    assert runs[0] == runs[1]


async def test_faults_skip_unauthorised_and_rate_limited_requests(api: Any) -> None:
    api.controls.inject("500", endpoints=["providers"])
    assert (await api.providers(headers={})).status == 401
    assert api.stats.faults["500"] == 0
    assert (await api.providers()).status == 500


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "418"}, "unknown fault kind"),
        ({"kind": "500", "endpoints": ["admin"]}, "unknown endpoints"),
        ({"kind": "500", "endpoints": []}, "unknown endpoints"),
        ({"kind": "500", "next_n": 0}, "next_n"),
        ({"kind": "500", "rate": 1.5}, "rate"),
        ({"kind": "429", "retry_after": -1}, "retry_after"),
        ({"kind": "slow", "delay": float("nan")}, "delay"),
    ],
)
async def test_bad_injections_are_refused(api: Any, kwargs: dict[str, Any], message: str) -> None:
    kind = kwargs.pop("kind")
    with pytest.raises(ValueError, match=message):
        api.controls.inject(kind, **kwargs)
