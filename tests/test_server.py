"""The local server, spoken to in raw HTTP: endpoints, validation, jobs, faults, limits, TTL."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from PIL import Image

from radient_async.server import FaultConfig, LocalServer, ServerConfig

pytestmark = pytest.mark.anyio

KEY = "server-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
TINY = {"width": 32, "height": 32}


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def start(**config: Any) -> LocalServer:
    server = LocalServer(ServerConfig(api_key=KEY, **config))
    await server.start()
    return server


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    running = await start(seed=3)
    try:
        yield running
    finally:
        await running.stop()


async def post(
    client: aiohttp.ClientSession,
    server: LocalServer,
    body: Any,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with client.post(
        f"{server.base_url}/images/generate",
        data=raw,
        headers={**AUTH, "Content-Type": "application/json", **(headers or {})},
    ) as response:
        return response.status, await response.json()


async def status(
    client: aiohttp.ClientSession, server: LocalServer, request_id: str, **params: str
) -> tuple[int, Any]:
    async with client.get(
        f"{server.base_url}/images/status",
        params={"request_id": request_id, **params},
        headers=AUTH,
    ) as response:
        return response.status, await response.json()


def png(color: tuple[int, int, int], size: tuple[int, int] = (32, 32), fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


async def fetch(client: aiohttp.ClientSession, url: str) -> tuple[int, bytes, str]:
    async with client.get(url) as response:
        return response.status, await response.read(), response.headers.get("Content-Type", "")


def decode(data: bytes) -> Image.Image:
    picture = Image.open(io.BytesIO(data))
    picture.load()
    return picture


async def test_async_job_processing_then_completed(
    client: aiohttp.ClientSession,
) -> None:
    server = await start(latency=0.2)
    try:
        code, job = await post(
            client, server, {"prompt": "a fox", "num_images": 2, "image_size": TINY}
        )
        assert code == 200
        assert job["status"] == "PROCESSING"
        assert job["request_id"].startswith("imgreq_")
        assert job["images"] is None
        assert job["error"] is None
        assert job["provider"] == "default"
        await asyncio.sleep(0.25)
        code, done = await status(client, server, job["request_id"])
        assert code == 200
        assert done["status"] == "COMPLETED"
        assert [(i["width"], i["height"], i["content_type"]) for i in done["images"]] == [
            (32, 32, "image/png")
        ] * 2
        code, data, ctype = await fetch(client, done["images"][1]["url"])
        assert (code, ctype) == (200, "image/png")
        assert decode(data).size == (32, 32)
    finally:
        await server.stop()


async def test_sync_mode_answers_completed_in_one_response(
    client: aiohttp.ClientSession, server: LocalServer
) -> None:
    code, job = await post(
        client, server, {"prompt": "sync", "sync_mode": True, "image_size": "square"}
    )
    assert code == 200
    assert job["status"] == "COMPLETED"
    assert job["images"][0]["width"] == 512
    assert server.stats.status_calls == 0


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("square_hd", (1024, 1024)),
        ("square", (512, 512)),
        ("portrait_4_3", (768, 1024)),
        ("portrait_16_9", (576, 1024)),
        ("landscape_4_3", (1024, 768)),
        ("landscape_16_9", (1024, 576)),
    ],
)
async def test_named_sizes_render_at_documented_pixels(
    client: aiohttp.ClientSession, server: LocalServer, name: str, size: tuple[int, int]
) -> None:
    _, job = await post(client, server, {"prompt": "size", "sync_mode": True, "image_size": name})
    _, data, _ = await fetch(client, job["images"][0]["url"])
    assert decode(data).size == size


async def test_files_have_content_length_and_are_deterministic_per_seed(
    client: aiohttp.ClientSession, server: LocalServer
) -> None:
    bodies = []
    for prompt in ("same", "same", "different"):
        _, job = await post(
            client, server, {"prompt": prompt, "seed": 5, "sync_mode": True, "image_size": TINY}
        )
        async with client.get(job["images"][0]["url"]) as response:
            data = await response.read()
            assert int(response.headers["Content-Length"]) == len(data)
        bodies.append(data)
    assert bodies[0] == bodies[1]
    assert bodies[0] != bodies[2]


async def test_seed_is_reported_when_not_given(
    client: aiohttp.ClientSession, server: LocalServer
) -> None:
    _, job = await post(client, server, {"prompt": "seedless", "image_size": TINY})
    assert isinstance(job["seed"], int)


async def test_providers_listing_and_selection(
    client: aiohttp.ClientSession, server: LocalServer
) -> None:
    async with client.get(f"{server.base_url}/images/providers", headers=AUTH) as response:
        assert await response.json() == {"providers": ["default", "sketch", "inline"]}
    _, job = await post(client, server, {"prompt": "p", "provider": "sketch", "image_size": TINY})
    assert job["provider"] == "sketch"
    code, _ = await status(client, server, job["request_id"], provider="sketch")
    assert code == 200
    code, body = await status(client, server, job["request_id"], provider="default")
    assert code == 404
    assert body["code"] == "not_found"
    code, body = await status(client, server, job["request_id"], provider="nope")
    assert (code, body["field"]) == (422, "provider")


async def test_inline_provider_returns_data_uris_in_sync_mode(
    client: aiohttp.ClientSession, server: LocalServer
) -> None:
    _, job = await post(
        client, server, {"prompt": "i", "provider": "inline", "sync_mode": True, "image_size": TINY}
    )
    url = job["images"][0]["url"]
    assert url.startswith("data:image/png;base64,")
    assert decode(base64.b64decode(url.split(",", 1)[1])).size == (32, 32)


def _distance(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel value (0..255) between two same-size images."""
    pa, pb = a.convert("RGB").tobytes(), b.convert("RGB").tobytes()
    return sum(abs(x - y) for x, y in zip(pa, pb, strict=True)) / len(pa)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP"])
async def test_image_to_image_blends_source_by_strength(
    client: aiohttp.ClientSession, server: LocalServer, fmt: str
) -> None:
    mime = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}[fmt]
    source = png((255, 0, 0), fmt=fmt)
    results = {}
    for strength in (0.0, 1.0):
        _, job = await post(
            client,
            server,
            {
                "prompt": "blend",
                "seed": 1,
                "sync_mode": True,
                "image_size": TINY,
                "source_url": data_uri(source, mime),
                "strength": strength,
            },
        )
        _, data, _ = await fetch(client, job["images"][0]["url"])
        results[strength] = decode(data)
    red = Image.new("RGB", (32, 32), (255, 0, 0))
    assert _distance(results[1.0], red) < 20
    assert _distance(results[0.0], red) > _distance(results[1.0], red) + 30


async def test_image_to_image_from_loopback_url(
    client: aiohttp.ClientSession, server: LocalServer
) -> None:
    _, first = await post(client, server, {"prompt": "src", "sync_mode": True, "image_size": TINY})
    url = first["images"][0]["url"]
    code, job = await post(
        client,
        server,
        {
            "prompt": "from url",
            "source_url": url,
            "strength": 1.0,
            "sync_mode": True,
            "image_size": TINY,
        },
    )
    assert code == 200
    _, source, _ = await fetch(client, url)
    _, data, _ = await fetch(client, job["images"][0]["url"])
    assert _distance(decode(data), decode(source)) < 5


async def test_remote_source_hosts_are_refused_by_default(
    client: aiohttp.ClientSession, server: LocalServer
) -> None:
    code, body = await post(
        client, server, {"prompt": "ssrf", "source_url": "http://10.0.0.1/x.png", "strength": 0.5}
    )
    assert (code, body["field"]) == (422, "source_url")
    assert server.stats.jobs_created == 0


BAD_BODIES: list[tuple[str, Any, int, str | None]] = [
    ("missing prompt", {"num_images": 1}, 422, "prompt"),
    ("empty prompt", {"prompt": "   "}, 422, "prompt"),
    ("prompt not a string", {"prompt": 5}, 400, "prompt"),
    ("prompt too long", {"prompt": "x" * 10_001}, 422, "prompt"),
    ("num_images zero", {"prompt": "p", "num_images": 0}, 422, "num_images"),
    ("num_images too many", {"prompt": "p", "num_images": 9}, 422, "num_images"),
    ("num_images bool", {"prompt": "p", "num_images": True}, 400, "num_images"),
    ("num_images string", {"prompt": "p", "num_images": "2"}, 400, "num_images"),
    ("unknown size", {"prompt": "p", "image_size": "huge"}, 422, "image_size"),
    (
        "size too small",
        {"prompt": "p", "image_size": {"width": 8, "height": 64}},
        422,
        "image_size",
    ),
    ("size wrong type", {"prompt": "p", "image_size": 512}, 400, "image_size"),
    (
        "size float sides",
        {"prompt": "p", "image_size": {"width": 1.5, "height": 2}},
        400,
        "image_size",
    ),
    ("sync_mode not bool", {"prompt": "p", "sync_mode": "yes"}, 400, "sync_mode"),
    ("unknown provider", {"prompt": "p", "provider": "dalle"}, 422, "provider"),
    ("strength above 1", {"prompt": "p", "strength": 1.5}, 422, "strength"),
    ("strength below 0", {"prompt": "p", "strength": -0.1}, 422, "strength"),
    ("strength string", {"prompt": "p", "strength": "0.5"}, 400, "strength"),
    ("guidance zero", {"prompt": "p", "guidance_scale": 0}, 422, "guidance_scale"),
    ("steps too many", {"prompt": "p", "num_inference_steps": 500}, 422, "num_inference_steps"),
    ("negative seed", {"prompt": "p", "seed": -1}, 422, "seed"),
    ("bad base64", {"prompt": "p", "source_url": "data:image/png;base64,@@@"}, 422, "source_url"),
    (
        "not an image",
        {"prompt": "p", "source_url": data_uri(b"hello", "image/png")},
        422,
        "source_url",
    ),
    ("text mime", {"prompt": "p", "source_url": "data:text/plain;base64,aGk="}, 422, "source_url"),
    ("ftp source", {"prompt": "p", "source_url": "ftp://x/y.png"}, 422, "source_url"),
    ("source not a string", {"prompt": "p", "source_url": 7}, 400, "source_url"),
    ("array body", [1, 2], 400, None),
    ("invalid json", b"{not json", 400, None),
]


@pytest.mark.parametrize(
    ("case", "body", "code", "field"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES]
)
async def test_bad_input_is_a_4xx_json_error_and_creates_nothing(
    client: aiohttp.ClientSession,
    server: LocalServer,
    case: str,
    body: Any,
    code: int,
    field: str | None,
) -> None:
    got, answer = await post(client, server, body)
    assert got == code, answer
    assert isinstance(answer["error"], str)
    assert answer["error"]
    assert answer["field"] == field
    assert server.stats.jobs_created == 0


async def test_nan_strength_is_rejected(client: aiohttp.ClientSession, server: LocalServer) -> None:
    code, body = await post(client, server, b'{"prompt": "p", "strength": NaN}')
    assert (code, body["field"]) == (422, "strength")


async def test_oversized_body_is_413(client: aiohttp.ClientSession) -> None:
    server = await start(max_body_bytes=2048)
    try:
        code, body = await post(client, server, {"prompt": "x" * 5000})
        assert code == 413
        assert body["code"] == "too_large"
    finally:
        await server.stop()


async def test_unknown_and_missing_request_ids(
    client: aiohttp.ClientSession, server: LocalServer
) -> None:
    code, body = await status(client, server, "imgreq_nope")
    assert (code, body["code"]) == (404, "not_found")
    async with client.get(f"{server.base_url}/images/status", headers=AUTH) as response:
        assert response.status == 422
        assert (await response.json())["field"] == "request_id"
    code, _, _ = await fetch(client, f"{server.base_url}/files/imgreq_nope/0.png")
    assert code == 404


async def test_auth_required_with_json_401(
    client: aiohttp.ClientSession, server: LocalServer
) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        async with client.get(f"{server.base_url}/images/providers", headers=headers) as response:
            assert response.status == 401
            body = await response.json()
            assert body["code"] == "unauthorized"
            assert KEY not in json.dumps(body)


async def test_no_auth_when_no_key_configured(client: aiohttp.ClientSession) -> None:
    server = LocalServer(ServerConfig())
    async with server, client.get(f"{server.base_url}/images/providers") as response:
        assert response.status == 200


async def test_idempotency_key_replays_the_same_job(
    client: aiohttp.ClientSession, server: LocalServer
) -> None:
    headers = {"Idempotency-Key": "abc-123"}
    _, first = await post(client, server, {"prompt": "once", "image_size": TINY}, headers)
    _, second = await post(client, server, {"prompt": "once", "image_size": TINY}, headers)
    _, third = await post(client, server, {"prompt": "once", "image_size": TINY})
    assert first["request_id"] == second["request_id"] != third["request_id"]
    assert server.stats.jobs_created == 2
    assert server.stats.idempotent_replays == 1


async def test_jobs_and_keys_expire_after_ttl(client: aiohttp.ClientSession) -> None:
    server = await start(job_ttl=0.2)
    try:
        headers = {"Idempotency-Key": "ttl"}
        _, job = await post(
            client,
            server,
            {"prompt": "short-lived", "sync_mode": True, "image_size": TINY},
            headers,
        )
        await asyncio.sleep(0.5)
        code, _ = await status(client, server, job["request_id"])
        assert code == 404
        code, _, _ = await fetch(client, job["images"][0]["url"])
        assert code == 404
        _, again = await post(
            client, server, {"prompt": "short-lived", "image_size": TINY}, headers
        )
        assert again["request_id"] != job["request_id"]
        assert len(server.state.jobs) == 1
    finally:
        await server.stop()


async def test_live_job_limit_answers_429(client: aiohttp.ClientSession) -> None:
    server = await start(max_live_jobs=2, latency=10)
    try:
        for _ in range(2):
            assert (await post(client, server, {"prompt": "p", "image_size": TINY}))[0] == 200
        code, body = await post(client, server, {"prompt": "p", "image_size": TINY})
        assert (code, body["code"]) == (429, "too_many_jobs")
    finally:
        await server.stop()


@pytest.mark.parametrize(
    ("kind", "code", "ctype"),
    [
        ("429", 429, "application/json"),
        ("500", 500, "text/html"),
        ("502", 502, "text/html"),
        ("503", 503, "application/json"),
    ],
)
async def test_status_faults_answer_with_their_code(
    client: aiohttp.ClientSession, server: LocalServer, kind: str, code: int, ctype: str
) -> None:
    server.controls.inject(kind, next_n=1, endpoints=["providers"], retry_after=2)
    async with client.get(f"{server.base_url}/images/providers", headers=AUTH) as response:
        assert response.status == code
        assert response.headers["Content-Type"].startswith(ctype)
        if kind in ("429", "503"):
            assert response.headers["Retry-After"] == "2"
            assert response.headers["retry-after-ms"] == "2000"
    async with client.get(f"{server.base_url}/images/providers", headers=AUTH) as response:
        assert response.status == 200
    assert server.stats.faults[kind] == 1


async def test_generate_fault_before_handler_creates_no_job(
    client: aiohttp.ClientSession, server: LocalServer
) -> None:
    server.controls.inject("503", next_n=1, endpoints=["generate"])
    code, _ = await post(client, server, {"prompt": "p", "image_size": TINY})
    assert code == 503
    assert server.stats.jobs_created == 0


@pytest.mark.parametrize("kind", ["reset", "truncate"])
async def test_broken_responses_cut_the_body(
    client: aiohttp.ClientSession, server: LocalServer, kind: str
) -> None:
    _, job = await post(client, server, {"prompt": "p", "sync_mode": True, "image_size": TINY})
    server.controls.inject(kind, next_n=1, endpoints=["files", "generate"])
    with pytest.raises(aiohttp.ClientPayloadError):
        await fetch(client, job["images"][0]["url"])
    code, data, _ = await fetch(client, job["images"][0]["url"])
    assert code == 200
    assert decode(data).size == (32, 32)


async def test_truncated_generate_still_creates_the_job(
    client: aiohttp.ClientSession, server: LocalServer
) -> None:
    server.controls.inject("truncate", next_n=1, endpoints=["generate"])
    with pytest.raises(aiohttp.ClientPayloadError):
        await post(client, server, {"prompt": "p", "image_size": TINY}, {"Idempotency-Key": "k"})
    assert server.stats.jobs_created == 1
    _, job = await post(
        client, server, {"prompt": "p", "image_size": TINY}, {"Idempotency-Key": "k"}
    )
    assert server.stats.idempotent_replays == 1
    assert job["request_id"] in server.state.jobs


async def test_slow_fault_delays_the_answer(
    client: aiohttp.ClientSession, server: LocalServer
) -> None:
    server.controls.inject("slow", next_n=1, endpoints=["providers"], delay=0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with client.get(f"{server.base_url}/images/providers", headers=AUTH) as response:
        assert response.status == 200
    assert loop.time() - started >= 0.29


async def test_random_faults_at_a_rate(client: aiohttp.ClientSession) -> None:
    server = await start(seed=11, faults=FaultConfig(rate=0.5, kinds=("503",)))
    try:
        codes = []
        for _ in range(60):
            async with client.get(f"{server.base_url}/images/providers", headers=AUTH) as r:
                codes.append(r.status)
        assert 10 < codes.count(503) < 50
        assert codes.count(503) == server.stats.faults["503"]
    finally:
        await server.stop()


async def test_rate_limit_answers_429_with_retry_after(client: aiohttp.ClientSession) -> None:
    server = await start(rate_limit=5)
    try:
        codes = []
        for _ in range(12):
            async with client.get(f"{server.base_url}/images/providers", headers=AUTH) as r:
                codes.append(r.status)
                if r.status == 429:
                    assert int(r.headers["Retry-After"]) >= 1
                    assert 0 < int(r.headers["retry-after-ms"]) <= 1000
        assert codes[:5] == [200] * 5
        assert 429 in codes
        assert server.stats.rate_limited == codes.count(429)
    finally:
        await server.stop()


async def test_controls_fail_force_status_latency_and_key(
    client: aiohttp.ClientSession, server: LocalServer
) -> None:
    server.controls.fail_next(1, error="boom")
    _, job = await post(client, server, {"prompt": "p", "sync_mode": True, "image_size": TINY})
    assert (job["status"], job["error"], job["images"]) == ("FAILED", "boom", None)
    _, job = await post(client, server, {"prompt": "p", "image_size": TINY})
    server.controls.force_status("WEIRD", next_n=1)
    assert (await status(client, server, job["request_id"]))[1]["status"] == "WEIRD"
    assert (await status(client, server, job["request_id"]))[1]["status"] == "COMPLETED"
    server.controls.set_latency(5.0)
    _, slow = await post(client, server, {"prompt": "p", "image_size": TINY})
    assert (await status(client, server, slow["request_id"]))[1]["status"] == "PROCESSING"
    server.controls.require_key(None)
    async with client.get(f"{server.base_url}/images/providers") as response:
        assert response.status == 200


async def test_fail_marker_in_prompt_fails_the_job(
    client: aiohttp.ClientSession, server: LocalServer
) -> None:
    _, job = await post(
        client, server, {"prompt": "x [fail]", "sync_mode": True, "image_size": TINY}
    )
    assert job["status"] == "FAILED"
    assert "[fail]" in job["error"]


async def test_separate_image_origin_and_poll_hint(client: aiohttp.ClientSession) -> None:
    server = await start(separate_image_origin=True, poll_hint=True, latency=0.5)
    try:
        _, job = await post(client, server, {"prompt": "cdn", "image_size": TINY})
        code, body = await status(client, server, job["request_id"])
        async with client.get(
            f"{server.base_url}/images/status",
            headers=AUTH,
            params={"request_id": job["request_id"]},
        ) as response:
            hint = int(response.headers["poll-after-ms"])
        assert 1 <= hint <= 500
        await asyncio.sleep(hint / 1000 + 0.05)
        _, body = await status(client, server, job["request_id"])
        url = body["images"][0]["url"]
        assert server.files_url is not None
        assert url.startswith(server.files_url + "/files/")
        assert not url.startswith(server.base_url)
        code, _, _ = await fetch(client, url)
        assert code == 200
        assert server.stats.authorized_requests["files"] == 0
    finally:
        await server.stop()


async def test_min_image_bytes_pads_to_a_valid_png(client: aiohttp.ClientSession) -> None:
    server = await start(min_image_bytes=100_000)
    try:
        _, job = await post(
            client, server, {"prompt": "big", "sync_mode": True, "image_size": TINY}
        )
        _, data, _ = await fetch(client, job["images"][0]["url"])
        assert len(data) >= 100_000
        assert decode(data).size == (32, 32)
    finally:
        await server.stop()


async def test_unknown_route_is_a_json_404(
    client: aiohttp.ClientSession, server: LocalServer
) -> None:
    async with client.get(f"{server.base_url}/images/nothing", headers=AUTH) as response:
        assert response.status == 404
        assert (await response.json())["code"] == "http_error"


def test_guides_own_python_example_works_unchanged(tmp_path: Any, monkeypatch: Any) -> None:
    """The guide's synchronous requests client: submit, poll, download, list providers."""
    import requests

    from radient_async.server import ThreadedServer

    monkeypatch.chdir(tmp_path)
    with ThreadedServer(ServerConfig(api_key="YOUR_RADIENT_API_KEY", latency=0.3)) as server:
        base = server.base_url
        headers = {
            "Authorization": "Bearer YOUR_RADIENT_API_KEY",
            "Content-Type": "application/json",
        }
        payload = {
            "prompt": "A serene bioluminescent forest at night",
            "num_images": 1,
            "image_size": "landscape_16_9",
            "sync_mode": False,
        }
        response = requests.post(
            f"{base}/images/generate", headers=headers, json=payload, timeout=10
        )
        response.raise_for_status()
        generation_data = response.json()
        request_id = generation_data.get("request_id")
        assert generation_data.get("status") == "PROCESSING"
        saved = []
        for _ in range(40):
            import time

            time.sleep(0.1)
            status_response = requests.get(
                f"{base}/images/status",
                headers=headers,
                params={"request_id": request_id},
                timeout=10,
            )
            status_response.raise_for_status()
            status_data = status_response.json()
            if status_data.get("status") == "COMPLETED":
                for img in status_data["images"]:
                    img_response = requests.get(img["url"], stream=True, timeout=10)
                    img_response.raise_for_status()
                    name = img["url"].split("/")[-1].split("?")[0]
                    with open(name, "wb") as f:
                        for chunk in img_response.iter_content(chunk_size=8192):
                            f.write(chunk)
                    saved.append(name)
                break
        assert saved == ["0.png"]
        with Image.open(tmp_path / "0.png") as picture:
            assert picture.size == (1024, 576)
        providers = requests.get(f"{base}/images/providers", headers=headers, timeout=10).json()
        assert "default" in providers["providers"]


async def test_stats_endpoint_for_other_processes(
    client: aiohttp.ClientSession, server: LocalServer
) -> None:
    await post(client, server, {"prompt": "counted", "image_size": TINY})
    stats_url = server.base_url.removesuffix("/v1") + "/_local/stats"
    async with client.get(stats_url) as response:
        assert response.status == 401
    async with client.get(stats_url, headers=AUTH) as response:
        stats = await response.json()
    assert stats["jobs_created"] == 1
    assert stats["requests"]["generate"] == 1
