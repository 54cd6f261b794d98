"""Test your own code against a realistic Radient: a pytest plugin and plain helpers.

Installed with the package and registered through the ``pytest11`` entry point, so the fixtures
are simply there; asking for one is the opt-in (nothing starts otherwise, and importing this module
loads neither Pillow nor the server).

Fixtures:

``radient_server``
    A running local server (``radient_async.server.ThreadedServer``) on an ephemeral loopback port,
    requiring a fresh random API key. Use ``.base_url``, ``.api_key``, ``.stats`` (counters: jobs,
    status calls, downloads, faults, idempotent replays, requests per endpoint, the last generate
    bodies) and ``.controls`` (``fail_next``, ``inject``, ``set_latency``, ``require_key``,
    ``set_rate_limit``, ``force_status``, ``clear_faults``, ``reset_stats``). It runs on its own
    thread and event loop, so it works with any async test mode (anyio, pytest-asyncio) and with
    synchronous clients alike.
``radient_server_config``
    The ``ServerConfig`` used; override this fixture to change latency, faults, limits.
``radient_session``
    An open ``radient_async.Session`` pointed at ``radient_server`` with quick polling. An async
    fixture: it runs under anyio's pytest plugin (``@pytest.mark.anyio``) and under pytest-asyncio's
    auto mode.

Without pytest, use the server directly::

    async with LocalServer(ServerConfig(api_key="k")) as server: ...   # in your event loop
    with ThreadedServer(ServerConfig(api_key="k")) as server: ...      # in a background thread
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ._session import Session
    from .server import ServerConfig, ThreadedServer

__all__ = [  # noqa: F822 - the first four are lazy, see __getattr__
    "FAST_POLL",
    "LocalServer",
    "ServerConfig",
    "ThreadedServer",
    "radient_server",
    "radient_server_config",
    "radient_session",
]


def __getattr__(name: str) -> Any:
    """Lazy re-exports, so that loading the plugin never imports the server or Pillow."""
    if name in ("LocalServer", "ServerConfig", "ThreadedServer"):
        from . import server

        return getattr(server, name)
    if name == "FAST_POLL":
        from ._polling import PollPolicy

        return PollPolicy(first_delay=0.01, min_interval=0.01, max_interval=0.2, timeout=60)
    raise AttributeError(name)


@pytest.fixture
def radient_server_config() -> ServerConfig:
    """The local server's configuration: a random required key, no latency, no faults."""
    from .server import ServerConfig

    return ServerConfig(api_key="rk-test-" + secrets.token_hex(12))


@pytest.fixture
def radient_server(radient_server_config: ServerConfig) -> Iterator[ThreadedServer]:
    """A running local Radient server on an ephemeral loopback port."""
    from .server import ThreadedServer

    with ThreadedServer(radient_server_config) as server:
        yield server


@pytest.fixture
async def radient_session(radient_server: ThreadedServer) -> AsyncIterator[Session]:
    """A ``Session`` open against ``radient_server``, polling quickly."""
    from ._retry import RetryPolicy
    from ._session import Session

    key = radient_server.api_key or "no-key-required"
    retry = RetryPolicy(initial_backoff=0.01, max_backoff=0.1)
    async with Session(
        key, radient_server.base_url, poll=__getattr__("FAST_POLL"), retry=retry
    ) as session:
        yield session
