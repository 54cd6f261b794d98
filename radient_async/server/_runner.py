"""Running the server: in the caller's event loop (``LocalServer``) or in a thread of its own.

``LocalServer`` binds the configured host and port (port 0: an ephemeral port) and, with
``separate_image_origin``, a second port that serves only the files, like a CDN on another origin.
``ThreadedServer`` runs a ``LocalServer`` on its own event loop in a background thread, for
synchronous clients (``requests``), other test runners and benchmarks.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType

from aiohttp import web

from ._app import CONTROLS, create_app, create_files_app
from ._config import ServerConfig
from ._controls import Controls
from ._handlers import STATE
from ._state import ServerState
from ._stats import Stats

__all__ = ["LocalServer", "ThreadedServer"]

SHUTDOWN_TIMEOUT = 0.5
"""Seconds requests still running at shutdown get to finish (a test server needs no long drain)."""
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}  # noqa: S104 - names, not binds


def _bind_host(host: str) -> str:
    # "localhost" may bind ::1 and 127.0.0.1 on different ephemeral ports; pick one family.
    return "127.0.0.1" if host == "localhost" else host


def _url_host(host: str) -> str:
    host = _WILDCARDS.get(host, host)
    return f"[{host}]" if ":" in host else host


class LocalServer:
    """``async with LocalServer(config) as server``: the API at ``server.base_url``.

    ``stats`` are the live counters and ``controls`` script failures, faults, latency, auth and
    the rate limit while it runs. Both exist from construction on; a server starts once.
    """

    def __init__(self, config: ServerConfig | None = None) -> None:
        self.config = config or ServerConfig()
        self._app = create_app(self.config)
        self.state: ServerState = self._app[STATE]
        self.controls: Controls = self._app[CONTROLS]
        self.base_url = ""
        """``http://HOST:PORT/v1`` once started."""
        self.files_url: str | None = None
        """The origin of the separate file server (``separate_image_origin``), else None."""
        self._runners: list[web.AppRunner] = []
        self._started = False

    @property
    def stats(self) -> Stats:
        """The live counters."""
        return self.state.stats

    @property
    def api_key(self) -> str | None:
        """The key the server currently requires (None: no auth)."""
        return self.state.api_key

    @property
    def origin(self) -> str:
        """``http://HOST:PORT`` of the API (``base_url`` without its base path)."""
        return self.base_url.removesuffix(self.config.base_path)

    async def start(self) -> None:
        """Bind and start serving (``async with`` calls this)."""
        if self._started:
            raise RuntimeError("a LocalServer starts once; make a new one")
        self._started = True
        host = _bind_host(self.config.host)
        port = await self._serve(self._app, host, self.config.port)
        self.base_url = f"http://{_url_host(host)}:{port}{self.config.base_path}"
        if self.config.separate_image_origin:
            files_port = await self._serve(create_files_app(self._app), host, 0)
            self.files_url = f"http://{_url_host(host)}:{files_port}"
            if self.config.image_base_url is None:
                self.state.image_base = self.files_url

    async def _serve(self, app: web.Application, host: str, port: int) -> int:
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT
        )
        self._runners.append(runner)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
        return int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop serving and release everything; safe to call twice or after a failed start."""
        runners, self._runners = self._runners, []
        if runners:
            # A connection accepted just now becomes a transport on a later loop iteration; if
            # the listener closes first, CPython 3.11 (``Server._attach``) fails that half-made
            # transport and leaks its socket (a ``ResourceWarning`` in whatever runs next).
            for _ in range(3):
                await asyncio.sleep(0)
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


class ThreadedServer:
    """``with ThreadedServer(config) as server``: a ``LocalServer`` on its own loop in a thread.

    Same attributes as ``LocalServer``; ``controls`` may be called from the test's thread.
    """

    def __init__(self, config: ServerConfig | None = None, *, start_timeout: float = 30.0) -> None:
        self.server = LocalServer(config)
        self.start_timeout = start_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    @property
    def config(self) -> ServerConfig:
        """The ``ServerConfig``."""
        return self.server.config

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/v1``."""
        return self.server.base_url

    @property
    def files_url(self) -> str | None:
        """The separate file server's origin, if any."""
        return self.server.files_url

    @property
    def origin(self) -> str:
        """``http://HOST:PORT`` of the API."""
        return self.server.origin

    @property
    def stats(self) -> Stats:
        """The live counters."""
        return self.server.stats

    @property
    def controls(self) -> Controls:
        """The runtime controls (thread-safe)."""
        return self.server.controls

    @property
    def state(self) -> ServerState:
        """The server's internal state (for white-box tests)."""
        return self.server.state

    @property
    def api_key(self) -> str | None:
        """The key the server currently requires (None: no auth)."""
        return self.server.api_key

    def start(self) -> None:
        """Start the thread and wait until the server listens (or raise why it could not)."""
        if self._thread is not None:
            raise RuntimeError("a ThreadedServer starts once; make a new one")
        self._thread = threading.Thread(target=self._run, name="radient-local-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(self.start_timeout):
            self.stop()
            raise RuntimeError(f"the local server did not start within {self.start_timeout} s")
        if self._error is not None:
            self._thread.join(self.start_timeout)
            raise self._error

    def stop(self) -> None:
        """Stop the server and wait for its thread to end."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(self.start_timeout)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        try:
            async with self.server:
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:  # reported to the thread that called start()
            self._error = exc
        finally:
            self._ready.set()

    def __enter__(self) -> ThreadedServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<ThreadedServer {self.base_url or 'not started'}>"
