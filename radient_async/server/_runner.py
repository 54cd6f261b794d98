"""Running the local server: in the current event loop (``LocalServer``) or in a thread.

``ThreadedServer`` is for synchronous clients, other test runners and benchmarks.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

from aiohttp import web

from ._app import create_app, create_files_app
from ._config import ServerConfig
from ._state import Controls, ServerState, Stats

__all__ = ["LocalServer", "ThreadedServer"]


class LocalServer:
    """``async with LocalServer(config) as server``: serve on loopback at ``server.base_url``.

    Port 0 (the default) picks a free ephemeral port. ``stats`` are the counters; ``controls``
    script faults, failures, latency, auth and rate limits while it runs.
    """

    def __init__(self, config: ServerConfig | None = None) -> None:
        self.config = config or ServerConfig()
        self.state = ServerState(self.config)
        self.controls = Controls(self.state)
        self._runners: list[web.AppRunner] = []
        self.base_url = ""
        self.files_url: str | None = None

    @property
    def stats(self) -> Stats:
        """The live counters."""
        return self.state.stats

    @property
    def api_key(self) -> str | None:
        """The key the server currently requires (None: no auth)."""
        return self.state.api_key

    async def start(self) -> None:
        """Bind and start serving (``async with`` calls this)."""
        app = create_app(state=self.state)
        port = await self._serve(app, self.config.port)
        self.base_url = f"http://{_url_host(self.config.host)}:{port}/v1"
        if self.config.separate_image_origin and self.config.image_base_url is None:
            files_port = await self._serve(create_files_app(app), 0)
            self.files_url = f"http://{_url_host(self.config.host)}:{files_port}"
            self.state.image_base = self.files_url

    async def _serve(self, app: web.Application, port: int) -> int:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        self._runners.append(runner)
        site = web.TCPSite(runner, self.config.host, port, reuse_address=True)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        return int(server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop serving and release everything."""
        runners, self._runners = self._runners, []
        for runner in reversed(runners):
            await runner.cleanup()
        if runners:
            # Transports of connections a client abandoned finish closing on the next loop
            # iterations; give them those before the loop (or its thread) goes away.
            await asyncio.sleep(0.05)

    async def __aenter__(self) -> LocalServer:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def __repr__(self) -> str:
        return f"<LocalServer {self.base_url or 'not started'}>"


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class ThreadedServer:
    """``with ThreadedServer(config) as server``: a ``LocalServer`` on its own loop in a thread."""

    def __init__(self, config: ServerConfig | None = None) -> None:
        self.server = LocalServer(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def stats(self) -> Stats:
        return self.server.stats

    @property
    def controls(self) -> Controls:
        return self.server.controls

    @property
    def config(self) -> ServerConfig:
        return self.server.config

    @property
    def api_key(self) -> str | None:
        return self.server.api_key

    def __enter__(self) -> ThreadedServer:
        self._thread = threading.Thread(target=self._run, name="radient-local-server", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            async with self.server:
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(30)
