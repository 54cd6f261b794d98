"""A user's own test files under pytest-asyncio, run in a fresh pytest (pytester).

The failure these guard against: a session opened in a fixture's setup and closed in its teardown
runs in two different tasks under pytest-asyncio, which anyio's task-group rule forbade.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = """
import pytest
import pytest_asyncio

import radient_async as ra
from radient_async.server import ServerConfig, ThreadedServer
from radient_async.testing import FAST_POLL


@pytest.fixture(scope="{scope}")
def server():
    with ThreadedServer(ServerConfig(api_key="user-key")) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="{scope}", scope="{scope}")
async def session(server):
    async with ra.Session("user-key", server.base_url, poll=FAST_POLL) as s:
        yield s


@pytest_asyncio.fixture(loop_scope="{scope}", scope="{scope}")
async def opened(server):
    s = await ra.Session("user-key", server.base_url, poll=FAST_POLL).open()
    yield s
    await s.aclose()


@pytest.mark.asyncio(loop_scope="{scope}")
async def test_generate(session):
    result = await session.generate("from a fixture", image_size=(16, 16))
    assert result.images


@pytest.mark.asyncio(loop_scope="{scope}")
async def test_a_job_left_running_is_cancelled_at_teardown(opened, server):
    server.controls.set_latency(30)
    await opened.submit("left running", image_size=(16, 16))
"""


@pytest.mark.parametrize("mode", ["strict", "auto"])
@pytest.mark.parametrize("scope", ["function", "module"])
def test_session_fixtures_under_pytest_asyncio(
    pytester: pytest.Pytester, mode: str, scope: str
) -> None:
    pytester.makepyfile(test_user=USER_TESTS.replace("{scope}", scope))
    result = pytester.runpytest_subprocess(
        "-p",
        "no:anyio",
        "-o",
        f"asyncio_mode={mode}",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
        "-W",
        "error",
        "-q",
    )
    result.assert_outcomes(passed=2)
