"""Fixtures of the reliability campaign: hostile servers and leak detectors.

Hostile servers are tiny ``aiohttp.web`` apps started in the test's own event loop on an ephemeral
loopback port. Each records what it received (method, path, query, Authorization header), so tests
assert on what a host saw, not only on what the client raised.

The test modules are not a package, so they share fixtures, not imports; each keeps its own few
constants (as ``tests/test_session.py`` does).
"""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import attrs
import pytest
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@attrs.define
class Seen:
    """One request a hostile server received."""

    method: str
    path: str
    query: str
    authorization: str | None


@attrs.define
class Hostile:
    """A running hostile server: its origin, its ``/v1`` base URL and the requests it saw."""

    origin: str
    seen: list[Seen]

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    def url(self, path: str) -> str:
        return f"{self.origin}{path}"


@pytest.fixture
async def hostile() -> AsyncIterator[Callable[..., Awaitable[Hostile]]]:
    """Start purpose-built servers: ``server = await hostile({"GET /v1/images/providers": h})``.

    ``host`` is the loopback name used in the URLs handed out (``127.0.0.1`` or ``localhost``), so
    two servers are different origins even though both listen on 127.0.0.1.
    """
    runners: list[web.AppRunner] = []

    async def start(routes: dict[str, Handler], *, host: str = "127.0.0.1") -> Hostile:
        seen: list[Seen] = []

        @web.middleware
        async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
            authorization = request.headers.get("Authorization")
            seen.append(Seen(request.method, request.path, request.query_string, authorization))
            return await handler(request)

        app = web.Application(middlewares=[record])
        for route, handler in routes.items():
            method, _, path = route.partition(" ")
            app.router.add_route(method, path, handler)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        runners.append(runner)
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return Hostile(f"http://{host}:{runner.addresses[0][1]}", seen)

    yield start
    for runner in reversed(runners):
        await runner.cleanup()


class TaskWatch:
    """Remembers the loop's tasks; ``settled()`` fails if new ones outlive a deadline."""

    def __init__(self) -> None:
        self.before = self.others()

    @staticmethod
    def others() -> set[asyncio.Task[Any]]:
        current = asyncio.current_task()
        return {t for t in asyncio.all_tasks() if t is not current and not t.done()}

    def new(self) -> set[asyncio.Task[Any]]:
        """Tasks started since the snapshot that are still running."""
        return self.others() - self.before

    async def settled(self, within: float = 1.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while self.new():
            if loop.time() >= deadline:
                names = sorted(repr(t.get_coro()) for t in self.new())[:5]
                pytest.fail(f"{len(self.new())} task(s) still running after {within}s: {names}")
            await asyncio.sleep(0.01)


@pytest.fixture
def task_watch() -> type[TaskWatch]:
    """``watch = task_watch()`` inside an async test snapshots the running loop's tasks."""
    return TaskWatch


def collect_resource_warnings() -> list[str]:
    """Collect garbage now; the ResourceWarnings it raises (unclosed sockets, transports...)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


@pytest.fixture
def no_resource_warnings() -> Callable[[], None]:
    """Call it at the end of a test: garbage collection must not find anything left unclosed."""

    def check() -> None:
        leaks = collect_resource_warnings()
        assert not leaks, leaks

    return check
