"""Test your own code against a realistic Radient: a pytest plugin and plain helpers.

Installed with the package and registered through the ``pytest11`` entry point, so the fixtures are
simply there; asking for one is the opt-in (nothing starts otherwise). Loading the plugin is cheap:
it imports neither Pillow nor the server until a fixture needs them.

Fixtures:

``radient_server``
    A running local server on an ephemeral loopback port that requires a fresh random API key
    (``rk-test-...``). Use ``.base_url``, ``.api_key``, ``.config``, ``.stats`` (jobs, status
    calls, downloads, faults, idempotent replays, requests per endpoint, the last generate bodies)
    and ``.controls`` (``fail_next``, ``inject``, ``clear_faults``, ``set_latency``,
    ``require_key``, ``set_rate_limit``, ``force_status``, ``reset_stats``).

    Design choice: it is a *synchronous* fixture yielding a ``ThreadedServer`` (the server on its
    own event loop in a background thread), not an async fixture yielding a ``LocalServer``. That
    one fixture then works unchanged under anyio's pytest plugin, under pytest-asyncio (any mode,
    any loop scope) and in plain synchronous tests (``requests``), and a test's event loop can
    block without stalling the server. The controls are safe to call from the test's thread.
``radient_server_config``
    The ``ServerConfig`` the server starts with; override this fixture (in a module, class or
    conftest) to change latency, faults, limits.
``radient_session``
    An open ``radient_async.Session`` pointed at ``radient_server`` with quick polling. An async
    fixture for anyio's pytest plugin (``@pytest.mark.anyio``); under pytest-asyncio's strict mode
    write your own ``@pytest_asyncio.fixture`` (docs/testing.md), which a session now supports.

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

KEY_PREFIX = "rk-test-"


def __getattr__(name: str) -> Any:
    """Lazy re-exports, so that loading the plugin never imports the server or Pillow."""
    if name in ("LocalServer", "ServerConfig", "ThreadedServer"):
        from . import server

        return getattr(server, name)
    if name == "FAST_POLL":
        from ._polling import PollPolicy

        return PollPolicy(first_delay=0.01, min_interval=0.01, max_interval=0.2, timeout=60)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@pytest.fixture
def radient_server_config() -> ServerConfig:
    """The local server's configuration: a fresh random required key, no latency, no faults."""
    from .server import ServerConfig

    return ServerConfig(api_key=KEY_PREFIX + secrets.token_hex(12))


@pytest.fixture
def radient_server(radient_server_config: ServerConfig) -> Iterator[ThreadedServer]:
    """A running local Radient server on an ephemeral loopback port (its own thread and loop)."""
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
