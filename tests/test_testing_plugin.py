"""The pytest plugin users get: fixtures under anyio and pytest-asyncio, controls, counters."""

from __future__ import annotations

import pytest

import radient_async as ra
from radient_async.server import ServerConfig, ThreadedServer
from radient_async.testing import FAST_POLL


@pytest.mark.anyio
async def test_radient_session_fixture_under_anyio(
    radient_session: ra.Session, radient_server: ThreadedServer
) -> None:
    result = await radient_session.generate("fixture", image_size=(32, 32))
    assert len(result.images) == 1
    assert radient_server.stats.jobs_created == 1
    assert radient_server.stats.requests["generate"] == 1
    assert radient_server.stats.generate_bodies[-1]["prompt"] == "fixture"


@pytest.mark.asyncio
async def test_radient_server_fixture_under_pytest_asyncio(radient_server: ThreadedServer) -> None:
    key = radient_server.api_key
    assert key is not None
    async with ra.Session(key, radient_server.base_url, poll=FAST_POLL) as session:
        result = await session.generate("pytest-asyncio", image_size=(32, 32))
    assert result.images


def test_server_requires_a_fresh_random_key(radient_server: ThreadedServer) -> None:
    import requests

    assert radient_server.api_key
    assert radient_server.api_key.startswith("rk-test-")
    response = requests.get(f"{radient_server.base_url}/images/providers", timeout=5)
    assert response.status_code == 401


@pytest.mark.anyio
async def test_scripting_the_server_per_test(
    radient_session: ra.Session, radient_server: ThreadedServer
) -> None:
    radient_server.controls.fail_next(2, error="quota exceeded")
    for _ in range(2):
        with pytest.raises(ra.JobFailed, match="quota exceeded"):
            await radient_session.generate("scripted", image_size=(32, 32))
    radient_server.controls.inject("503", next_n=1, endpoints=["generate"], retry_after=0.01)
    assert (await radient_session.generate("recovers", image_size=(32, 32))).images
    assert radient_server.stats.faults["503"] == 1
    radient_server.controls.reset_stats()
    assert radient_server.stats.jobs_created == 0


class TestOverridingTheConfig:
    """Overriding ``radient_server_config`` (here for one class) is how tests change the server."""

    @pytest.fixture
    def radient_server_config(self) -> ServerConfig:
        return ServerConfig(api_key="custom-key", latency=0.05)

    @pytest.mark.anyio
    async def test_config_fixture_can_be_overridden(self, radient_server: ThreadedServer) -> None:
        assert radient_server.api_key == "custom-key"
        assert radient_server.config.latency == 0.05
