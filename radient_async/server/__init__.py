"""A local, Radient-compatible image generation server.

It implements the documented API (``POST /v1/images/generate``, ``GET /v1/images/status``,
``GET /v1/images/providers`` and the image files it hands out) with real PNGs from a deterministic
procedural renderer, plus what a client needs to be tested against: simulated latency, fault
injection, a rate limit, idempotency keys, counters and runtime controls. Needs Pillow:
``pip install 'radient-async[server]'``. See ``docs/server.md``.

    async with LocalServer(ServerConfig(api_key="dev")) as server:
        print(server.base_url)   # http://127.0.0.1:PORT/v1
"""

from __future__ import annotations

try:
    import PIL  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("the local server needs Pillow: pip install 'radient-async[server]'") from exc

from ._app import CONTROLS, STATS, create_app, create_files_app
from ._config import ENDPOINTS, FAULT_KINDS, FaultConfig, ServerConfig
from ._controls import Controls
from ._runner import LocalServer, ThreadedServer
from ._stats import Stats

__all__ = [
    "CONTROLS",
    "ENDPOINTS",
    "FAULT_KINDS",
    "STATS",
    "Controls",
    "FaultConfig",
    "LocalServer",
    "ServerConfig",
    "Stats",
    "ThreadedServer",
    "create_app",
    "create_files_app",
]
