"""The documented endpoints over loopback HTTP: job JSON, sync and async jobs, providers, files."""

from __future__ import annotations

import asyncio
import base64
import re
from typing import Any

import pytest

pytestmark = pytest.mark.anyio

JOB_KEYS = {"request_id", "status", "images", "provider", "error", "seed"}
TINY = {"width": 32, "height": 32}


async def test_async_job_is_processing_then_completed(start_server: Any, tools: Any) -> None:
    api = await start_server(latency=0.2)
    reply = await api.generate({"prompt": "a fox", "num_images": 2, "image_size": TINY})
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("application/json")
    job = reply.json()
    assert set(job) == JOB_KEYS
    assert re.fullmatch(r"imgreq_[0-9a-f]{24}", job["request_id"])
    assert (job["status"], job["images"], job["error"], job["provider"]) == (
        "PROCESSING",
        None,
        None,
        "default",
    )
    assert isinstance(job["seed"], int)
    same = (await api.status(job["request_id"])).json()
    assert same["status"] == "PROCESSING"
    await asyncio.sleep(0.25)
    done = (await api.status(job["request_id"])).json()
    assert set(done) == JOB_KEYS
    assert done["status"] == "COMPLETED"
    assert done["seed"] == job["seed"]
    assert [(i["width"], i["height"], i["content_type"]) for i in done["images"]] == [
        (32, 32, "image/png")
    ] * 2
    assert done["images"][0]["url"] != done["images"][1]["url"]
    assert (await api.image(done, 1)).size == (32, 32)
    assert api.stats.status_calls == 2


async def test_sync_mode_answers_the_finished_job_after_the_latency(start_server: Any) -> None:
    api = await start_server(latency=0.15)
    loop = asyncio.get_running_loop()
    started = loop.time()
    job = await api.job({"prompt": "sync", "sync_mode": True, "image_size": TINY})
    assert loop.time() - started >= 0.14
    assert job["status"] == "COMPLETED"
    assert job["images"][0]["url"].startswith(api.base_url + "/files/")
    assert api.stats.status_calls == 0


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
async def test_named_sizes_are_the_documented_pixels(
    api: Any, tools: Any, name: str, size: tuple[int, int]
) -> None:
    job = await api.job({"prompt": "size", "sync_mode": True, "image_size": name})
    image = job["images"][0]
    assert (image["width"], image["height"]) == size
    reply = await api.get(image["url"])
    assert tools.png_size(reply.body) == size


async def test_default_size_is_square_hd(api: Any) -> None:
    job = await api.job({"prompt": "default size", "sync_mode": True})
    assert (job["images"][0]["width"], job["images"][0]["height"]) == (1024, 1024)


async def test_custom_sizes_at_both_limits(api: Any) -> None:
    body = {"prompt": "thin", "sync_mode": True, "image_size": {"width": 16, "height": 4096}}
    job = await api.job(body)
    assert (job["images"][0]["width"], job["images"][0]["height"]) == (16, 4096)
    assert (await api.image(job)).size == (16, 4096)


async def test_files_have_png_content_type_length_and_caching(api: Any) -> None:
    job = await api.job({"prompt": "file", "sync_mode": True, "image_size": TINY})
    reply = await api.get(job["images"][0]["url"])
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "image/png"
    assert int(reply.headers["Content-Length"]) == len(reply.body)
    assert reply.headers["Cache-Control"].startswith("public, max-age=")
    head = await api.request("HEAD", job["images"][0]["url"])
    assert head.status == 200
    assert int(head.headers["Content-Length"]) == len(reply.body)
    assert api.stats.downloads == 1  # HEAD is not a download


async def test_files_need_no_auth_and_are_counted(api: Any) -> None:
    job = await api.job({"prompt": "cdn-like", "sync_mode": True, "image_size": TINY})
    reply = await api.get(job["images"][0]["url"])  # no Authorization header
    assert reply.status == 200
    assert api.stats.downloads == 1
    assert api.stats.requests["files"] == 1
    assert api.stats.authorized_requests.get("files", 0) == 0
    assert api.stats.authorized_requests["generate"] == 1


async def test_providers_are_listed(api: Any) -> None:
    reply = await api.providers()
    assert reply.status == 200
    assert reply.json() == {"providers": ["default", "sketch", "inline"]}
    assert api.stats.provider_calls == 1


async def test_provider_is_selected_and_checked_on_status(api: Any) -> None:
    job = await api.job({"prompt": "p", "provider": "sketch", "image_size": TINY})
    assert job["provider"] == "sketch"
    assert (await api.status(job["request_id"], provider="sketch")).status == 200
    assert (await api.status(job["request_id"])).status == 200
    other = await api.status(job["request_id"], provider="default")
    assert other.error == (404, "not_found", "request_id")
    unknown = await api.status(job["request_id"], provider="dalle")
    assert unknown.error == (422, "unknown_value", "provider")
    assert "dalle" in unknown.json()["error"]


async def test_configured_providers_and_default(start_server: Any) -> None:
    api = await start_server(providers=("fast", "sketch"))
    assert (await api.providers()).json() == {"providers": ["fast", "sketch"]}
    job = await api.job({"prompt": "p", "image_size": TINY})
    assert job["provider"] == "fast"
    assert (await api.generate({"prompt": "p", "provider": "default"})).error == (
        422,
        "unknown_value",
        "provider",
    )


async def test_inline_provider_returns_data_uris_in_sync_mode_only(api: Any) -> None:
    body = {"prompt": "i", "provider": "inline", "num_images": 2, "image_size": TINY}
    job = await api.job({**body, "sync_mode": True})
    for index, image in enumerate(job["images"]):
        assert image["url"].startswith("data:image/png;base64,")
        assert (await api.image(job, index)).size == (32, 32)
    assert api.stats.downloads == 0
    assert api.stats.images_rendered == 2
    later = await api.job(body)
    done = await api.wait(later["request_id"])
    assert done["images"][0]["url"].startswith("http://")


async def test_unknown_fields_are_ignored(api: Any) -> None:
    job = await api.job(
        {"prompt": "p", "image_size": TINY, "negative_prompt": "x", "style": {"a": [1, None]}}
    )
    assert job["status"] in ("PROCESSING", "COMPLETED")


async def test_null_optional_fields_mean_not_given(api: Any) -> None:
    job = await api.job(
        {
            "prompt": "p",
            "num_images": None,
            "image_size": None,
            "sync_mode": None,
            "provider": None,
            "seed": None,
            "strength": None,
            "source_url": None,
        }
    )
    assert job["provider"] == "default"


async def test_seed_is_reported_and_reproduces_the_image(api: Any) -> None:
    first = await api.job({"prompt": "seedless", "sync_mode": True, "image_size": TINY})
    again = await api.job(
        {"prompt": "seedless", "sync_mode": True, "image_size": TINY, "seed": first["seed"]}
    )
    assert again["seed"] == first["seed"]
    a = await api.get(first["images"][0]["url"])
    b = await api.get(again["images"][0]["url"])
    assert a.body == b.body


async def test_unknown_route_and_method_are_json_errors(api: Any) -> None:
    missing = await api.get(f"{api.base_url}/images/nothing", headers=api.auth)
    assert missing.error == (404, "http_error", None)
    wrong = await api.request("DELETE", f"{api.base_url}/images/generate", headers=api.auth)
    assert wrong.error == (405, "http_error", None)
    assert "POST" in wrong.headers["Allow"]
    assert api.stats.requests["unknown"] == 2


async def test_custom_base_path(start_server: Any) -> None:
    api = await start_server(base_path="/api/radient/v1")
    assert api.base_url.endswith("/api/radient/v1")
    job = await api.job({"prompt": "p", "sync_mode": True, "image_size": TINY})
    assert job["images"][0]["url"].startswith(api.base_url + "/files/")
    assert (await api.get(job["images"][0]["url"])).status == 200


async def test_image_base_url_is_used_for_links(start_server: Any) -> None:
    api = await start_server(image_base_url="https://cdn.example.test/imgs/")
    job = await api.job({"prompt": "p", "sync_mode": True, "image_size": TINY})
    url = job["images"][0]["url"]
    assert url == f"https://cdn.example.test/imgs/files/{job['request_id']}/0.png"


async def test_stats_endpoint_for_other_processes(api: Any) -> None:
    await api.job({"prompt": "counted", "image_size": TINY})
    url = api.server.origin + "/_local/stats"
    assert (await api.get(url)).error == (401, "unauthorized", None)
    stats = (await api.get(url, headers=api.auth)).json()
    assert stats["jobs_created"] == 1
    assert stats["requests"]["generate"] == 1
    assert stats["live_jobs"] == 1
    assert stats["generate_bodies"][-1]["prompt"] == "counted"


async def test_inline_sync_data_uri_decodes_to_the_file_bytes(api: Any) -> None:
    body = {"prompt": "same bytes", "seed": 4, "sync_mode": True, "image_size": TINY}
    inline = await api.job({**body, "provider": "inline"})
    data = base64.b64decode(inline["images"][0]["url"].split(",", 1)[1])
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
