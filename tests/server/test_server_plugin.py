"""The pytest plugin (``radient_async.testing``): fixtures under anyio, pytest-asyncio and sync."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import aiohttp
import pytest

from radient_async.server import ServerConfig, ThreadedServer


def test_loading_the_plugin_imports_neither_pillow_nor_the_server() -> None:
    code = (
        "import sys, radient_async.testing as t; "
        "assert 'PIL' not in sys.modules, 'PIL'; "
        "assert 'radient_async.server' not in sys.modules, 'server'; "
        "assert t.ServerConfig.__module__.startswith('radient_async.server'); "
        "assert 'radient_async.server' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_plugin_is_registered() -> None:
    from importlib.metadata import entry_points

    names = {e.value for e in entry_points(group="pytest11")}
    assert "radient_async.testing" in names


def test_server_fixture_requires_a_fresh_random_key(radient_server: ThreadedServer) -> None:
    import requests

    key = radient_server.api_key
    assert key is not None
    assert key.startswith("rk-test-")
    assert radient_server.config.api_key == key
    url = f"{radient_server.base_url}/images/providers"
    assert requests.get(url, timeout=5).status_code == 401
    ok = requests.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=5)
    assert ok.json()["providers"]


def test_each_test_gets_its_own_server(radient_server: ThreadedServer) -> None:
    assert radient_server.stats.jobs_created == 0


async def _generate(server: ThreadedServer, prompt: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    body = {"prompt": prompt, "sync_mode": True, "image_size": {"width": 32, "height": 32}}
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.post(f"{server.base_url}/images/generate", json=body) as response,
    ):
        job: dict[str, Any] = await response.json()
        return job


@pytest.mark.anyio
async def test_under_anyio(radient_server: ThreadedServer, anyio_backend: str) -> None:
    radient_server.controls.fail_next(1, error="scripted")
    job = await _generate(radient_server, "anyio")
    assert (job["status"], job["error"]) == ("FAILED", "scripted")
    assert radient_server.stats.generate_bodies[-1]["prompt"] == "anyio"


@pytest.mark.asyncio
async def test_under_pytest_asyncio(radient_server: ThreadedServer) -> None:
    job = await _generate(radient_server, "pytest-asyncio")
    assert job["status"] == "COMPLETED"
    assert radient_server.stats.jobs_created == 1


class TestOverridingTheConfig:
    """Overriding ``radient_server_config`` is how a test module or class changes the server."""

    @pytest.fixture
    def radient_server_config(self) -> ServerConfig:
        return ServerConfig(api_key="custom-key", latency=0.05, poll_hint=True)

    def test_override_is_used(self, radient_server: ThreadedServer) -> None:
        assert radient_server.api_key == "custom-key"
        assert radient_server.config.latency == 0.05
        assert radient_server.config.poll_hint


def test_the_default_config_fixture(radient_server_config: ServerConfig) -> None:
    assert radient_server_config.api_key is not None
    assert radient_server_config.latency == 0
    assert radient_server_config.faults.rate == 0


def test_lazy_names() -> None:
    import radient_async.testing as testing

    assert testing.ThreadedServer is ThreadedServer
    assert testing.FAST_POLL.first_delay == 0.01
    with pytest.raises(AttributeError, match="nothing"):
        testing.nothing  # noqa: B018
