"""Starting the server three ways, a separate image origin, clean shutdown, the guide's example."""

from __future__ import annotations

import asyncio
import base64
import gc
import io
import os
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from PIL import Image

from radient_async.server import (
    CONTROLS,
    STATS,
    LocalServer,
    ServerConfig,
    ThreadedServer,
    create_app,
)

TINY = {"width": 32, "height": 32}


@pytest.mark.anyio
async def test_local_server_binds_an_ephemeral_loopback_port() -> None:
    server = LocalServer(ServerConfig())
    assert repr(server) == "<LocalServer not started>"
    async with server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert server.base_url.endswith("/v1")
        port = int(server.base_url.split(":")[2].split("/")[0])
        assert port > 0
        assert server.origin == f"http://127.0.0.1:{port}"
        assert server.files_url is None
        with pytest.raises(RuntimeError, match="starts once"):
            await server.start()
    await server.stop()  # twice is fine


@pytest.mark.anyio
async def test_shutdown_leaves_no_task_and_closes_connections() -> None:
    before = asyncio.all_tasks()
    async with aiohttp.ClientSession() as http:
        async with (
            LocalServer(ServerConfig(latency=0.05)) as server,
            http.post(
                f"{server.base_url}/images/generate",
                json={"prompt": "p", "image_size": TINY},
            ) as response,
        ):
            assert response.status == 200
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(f"{server.base_url}/images/providers")
    gc.collect()
    assert asyncio.all_tasks() == before


@pytest.mark.anyio
async def test_shutdown_does_not_wait_for_a_long_sync_request() -> None:
    async with aiohttp.ClientSession() as http:
        server = LocalServer(ServerConfig(latency=30))
        await server.start()
        pending = asyncio.ensure_future(
            http.post(f"{server.base_url}/images/generate", json={"prompt": "p", "sync_mode": True})
        )
        await asyncio.sleep(0.1)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await server.stop()
        assert loop.time() - started < 3
        with pytest.raises(aiohttp.ClientError):
            await pending


@pytest.mark.anyio
async def test_port_in_use_is_an_os_error() -> None:
    async with LocalServer(ServerConfig()) as first:
        port = int(first.origin.rsplit(":", 1)[1])
        second = LocalServer(ServerConfig(port=port))
        with pytest.raises(OSError):
            async with second:
                pass  # pragma: no cover


@pytest.mark.anyio
async def test_separate_image_origin_serves_files_without_the_key() -> None:
    config = ServerConfig(api_key="k", separate_image_origin=True)
    headers = {"Authorization": "Bearer k"}
    async with LocalServer(config) as server, aiohttp.ClientSession() as http:
        assert server.files_url is not None
        assert server.files_url != server.origin
        body = {"prompt": "cdn", "sync_mode": True, "image_size": TINY}
        async with http.post(
            f"{server.base_url}/images/generate", json=body, headers=headers
        ) as response:
            job = await response.json()
        url = job["images"][0]["url"]
        assert url.startswith(f"{server.files_url}/files/{job['request_id']}/")
        async with http.get(url) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "image/png"
        same_origin = f"{server.base_url}/files/{job['request_id']}/0.png"
        async with http.get(same_origin) as response:
            assert response.status == 200  # the API origin still serves them
        async with http.get(server.files_url + "/v1/images/providers", headers=headers) as r:
            assert r.status == 404  # the file origin serves only files
        assert server.stats.downloads == 2
        assert server.stats.authorized_requests.get("files", 0) == 0


@pytest.mark.anyio
async def test_create_app_embeds_in_any_runner() -> None:
    app = create_app(ServerConfig(api_key="k"))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    try:
        async with aiohttp.ClientSession(headers={"Authorization": "Bearer k"}) as http:
            app[CONTROLS].fail_next(1, error="embedded")
            body = {"prompt": "p", "sync_mode": True, "image_size": TINY}
            async with http.post(f"{base}/images/generate", json=body) as response:
                assert (await response.json())["error"] == "embedded"
            async with http.post(f"{base}/images/generate", json=body) as response:
                url = (await response.json())["images"][0]["url"]
            assert url.startswith(base + "/files/")
            async with http.get(url) as response:
                assert response.status == 200
        assert app[STATS].jobs_created == 2
    finally:
        await runner.cleanup()


def test_threaded_server_serves_synchronous_clients() -> None:
    import requests

    with ThreadedServer(ServerConfig(api_key="k", latency=0.05)) as server:
        assert repr(server).startswith("<ThreadedServer http://127.0.0.1:")
        assert server.config.latency == 0.05
        server.controls.fail_next(1, error="from another thread")
        headers = {"Authorization": "Bearer k"}
        reply = requests.post(
            f"{server.base_url}/images/generate",
            json={"prompt": "p", "sync_mode": True, "image_size": TINY},
            headers=headers,
            timeout=10,
        )
        assert reply.json()["error"] == "from another thread"
        assert server.stats.jobs_created == 1
        with pytest.raises(RuntimeError, match="starts once"):
            server.start()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.base_url}/images/providers", timeout=2)


def test_threaded_server_reports_why_it_could_not_start() -> None:
    with ThreadedServer(ServerConfig()) as first:
        port = int(first.origin.rsplit(":", 1)[1])
        with pytest.raises(OSError), ThreadedServer(ServerConfig(port=port)):
            pass  # pragma: no cover


def test_many_threaded_servers_start_and_stop_quickly() -> None:
    started = time.monotonic()
    for _ in range(5):
        with ThreadedServer() as server:
            assert server.base_url
    assert time.monotonic() - started < 5


def _guide_download_image(image_url: str, filename_prefix: str = "generated_image") -> str | None:
    """The guide's ``download_image``, verbatim apart from a timeout and formatting."""
    import requests

    try:
        img_response = requests.get(image_url, stream=True, timeout=10)
        img_response.raise_for_status()
        original_filename = image_url.split("/")[-1].split("?")[0]
        if not original_filename:
            timestamp = int(time.time())
            original_filename = f"{filename_prefix}_{timestamp}.png"
        name, ext = os.path.splitext(original_filename)
        if not ext:
            ext = ".png"
        save_path = f"{name}{ext}"
        with open(save_path, "wb") as f:
            for chunk in img_response.iter_content(chunk_size=8192):
                f.write(chunk)
        print(f"Image downloaded successfully: {save_path}")
        return save_path
    except requests.exceptions.RequestException as e:
        print(f"Error downloading image {image_url}: {e}")
        return None


def test_the_guides_python_examples_work_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Text-to-image with polling, image-to-image from a data URI, listing providers."""
    import requests

    monkeypatch.chdir(tmp_path)
    config = ServerConfig(api_key="YOUR_RADIENT_API_KEY", latency=0.3)
    with ThreadedServer(config) as server:
        RADIENT_API_KEY = "YOUR_RADIENT_API_KEY"
        RADIENT_BASE_URL = server.base_url
        headers = {
            "Authorization": f"Bearer {RADIENT_API_KEY}",
            "Content-Type": "application/json",
        }
        payload = {
            "prompt": "A serene bioluminescent forest at night, with glowing mushrooms and "
            "mystical creatures, digital painting.",
            "num_images": 1,
            "image_size": "landscape_16_9",
            "sync_mode": False,
        }
        # -- text-to-image: submit, then poll (the guide polls every 5 s; 0.1 s here) --
        response = requests.post(
            f"{RADIENT_BASE_URL}/images/generate", headers=headers, json=payload, timeout=10
        )
        response.raise_for_status()
        generation_data = response.json()
        request_id = generation_data.get("request_id")
        status = generation_data.get("status")
        assert request_id
        assert status == "PROCESSING"
        saved = []
        start_time = time.time()
        while time.time() - start_time < 10:
            time.sleep(0.1)
            status_payload = {"request_id": request_id}
            if payload.get("provider"):
                status_payload["provider"] = str(payload["provider"])  # pragma: no cover
            status_response = requests.get(
                f"{RADIENT_BASE_URL}/images/status",
                headers=headers,
                params=status_payload,
                timeout=10,
            )
            status_response.raise_for_status()
            status_data = status_response.json()
            current_status = status_data.get("status")
            if current_status == "COMPLETED":
                for img in status_data["images"]:
                    saved.append(_guide_download_image(img["url"], f"image_{request_id}"))
                break
            assert current_status == "PROCESSING"
        assert saved == ["0.png"]
        with Image.open(tmp_path / "0.png") as picture:
            picture.load()
            assert (picture.format, picture.size) == ("PNG", (1024, 576))

        # -- image-to-image from a local file as a data URI --
        source = tmp_path / "source_image.jpg"
        Image.new("RGB", (64, 48), (200, 30, 30)).save(source, format="JPEG")
        with open(source, "rb") as image_file:
            encoded_string = base64.b64encode(image_file.read()).decode("utf-8")
        data_uri = f"data:image/jpeg;base64,{encoded_string}"
        payload_img2img = {
            "prompt": "Transform this portrait into a vibrant pop art style.",
            "source_url": data_uri,
            "strength": 0.7,
            "num_images": 1,
            "image_size": "square",
            "sync_mode": False,
        }
        response = requests.post(
            f"{RADIENT_BASE_URL}/images/generate", headers=headers, json=payload_img2img, timeout=10
        )
        response.raise_for_status()
        generation_data = response.json()
        assert generation_data.get("status") == "PROCESSING"
        assert generation_data.get("request_id")

        # -- listing providers --
        response = requests.get(f"{RADIENT_BASE_URL}/images/providers", headers=headers, timeout=10)
        response.raise_for_status()
        providers_data = response.json()
        assert providers_data.get("providers")
        assert "default" in providers_data["providers"]
        assert server.stats.jobs_created == 2


def test_a_png_from_the_server_is_byte_valid(tmp_path: Path) -> None:
    """Every chunk's CRC checks out (Pillow verifies them), padding included."""
    import requests

    with ThreadedServer(ServerConfig(min_image_bytes=5000)) as server:
        job = requests.post(
            f"{server.base_url}/images/generate",
            json={"prompt": "crc", "sync_mode": True, "image_size": TINY},
            timeout=10,
        ).json()
        data = requests.get(job["images"][0]["url"], timeout=10).content
    with Image.open(io.BytesIO(data)) as picture:
        picture.verify()
