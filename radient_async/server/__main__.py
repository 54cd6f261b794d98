"""``python -m radient_async.server`` (or ``radient-server``): run the local server until stopped.

The first line printed is the base URL (``http://127.0.0.1:PORT/v1``), so scripts can read it;
SIGINT or SIGTERM stops the server cleanly (exit 0). Loopback only unless ``--host`` says else.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import signal
import sys
from collections.abc import Sequence

from ._config import ENDPOINTS, FAULT_KINDS, FaultConfig, ServerConfig
from ._runner import LocalServer

__all__ = ["build_config", "main", "parser"]


def parser() -> argparse.ArgumentParser:
    """The command line options; each maps to a ``ServerConfig`` field (see docs/server.md)."""
    p = argparse.ArgumentParser(
        prog="radient-server", description="Run a local Radient-compatible image API."
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    p.add_argument("--port", type=int, default=8000, help="port; 0 picks a free one (default 8000)")
    key = p.add_mutually_exclusive_group()
    key.add_argument("--api-key", help="require this key (Authorization: Bearer KEY)")
    key.add_argument("--random-key", action="store_true", help="require a generated key")
    p.add_argument("--base-path", default="/v1", help="API base path ending in /v1")
    p.add_argument("--providers", nargs="+", default=["default", "sketch", "inline"])
    p.add_argument("--latency", type=float, default=0.0, help="mean job time in seconds")
    p.add_argument("--jitter", type=float, default=0.0, help="uniform ± spread of job time")
    p.add_argument("--rate-limit", type=float, help="API requests per second before 429")
    p.add_argument("--fault-rate", type=float, default=0.0, help="fraction of requests to break")
    p.add_argument("--fault-kinds", nargs="+", choices=FAULT_KINDS, default=list(FAULT_KINDS))
    p.add_argument("--fault-endpoints", nargs="+", choices=ENDPOINTS, default=list(ENDPOINTS))
    p.add_argument("--retry-after", type=float, default=1.0, help="Retry-After of injected 429/503")
    p.add_argument("--slow-delay", type=float, default=0.5, help="seconds a 'slow' fault waits")
    p.add_argument("--separate-image-origin", action="store_true", help="serve files on 2nd port")
    p.add_argument("--image-base-url", help="public base URL for image links (a CDN)")
    p.add_argument("--poll-hint", action="store_true", help="send poll-after-ms while processing")
    p.add_argument("--min-image-bytes", type=int, default=0, help="pad PNGs to at least N bytes")
    p.add_argument("--job-ttl", type=float, default=3600.0, help="seconds a finished job is kept")
    p.add_argument("--max-live-jobs", type=int, default=100_000, help="beyond: 429")
    p.add_argument("--max-body-bytes", type=int, default=32 * 1024 * 1024, help="beyond: 413")
    p.add_argument(
        "--allow-remote-sources",
        action="store_true",
        help="fetch source_url from any host (default: loopback hosts only)",
    )
    p.add_argument("--seed", type=int, help="seed for latency, seeds and fault randomness")
    return p


def build_config(args: argparse.Namespace) -> ServerConfig:
    """A validated ``ServerConfig`` from parsed options (``ValueError`` when one is bad)."""
    key = "rk-" + secrets.token_urlsafe(18) if args.random_key else args.api_key
    return ServerConfig(
        host=args.host,
        port=args.port,
        api_key=key,
        base_path=args.base_path,
        providers=tuple(args.providers),
        latency=args.latency,
        latency_jitter=args.jitter,
        rate_limit=args.rate_limit,
        faults=FaultConfig(
            rate=args.fault_rate,
            kinds=tuple(args.fault_kinds),
            endpoints=tuple(args.fault_endpoints),
            retry_after=args.retry_after,
            slow_delay=args.slow_delay,
        ),
        separate_image_origin=args.separate_image_origin,
        image_base_url=args.image_base_url,
        poll_hint=args.poll_hint,
        min_image_bytes=args.min_image_bytes,
        job_ttl=args.job_ttl,
        max_live_jobs=args.max_live_jobs,
        max_body_bytes=args.max_body_bytes,
        allow_remote_sources=args.allow_remote_sources,
        seed=args.seed,
    )


async def serve(config: ServerConfig, shown_key: str = "anything") -> None:
    """Serve until SIGINT/SIGTERM, printing the base URL first (and ``shown_key``, not the key)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows' loop has no signal handlers
            loop.add_signal_handler(sig, stop.set)
    async with LocalServer(config) as server:
        print(server.base_url, flush=True)
        if server.files_url:
            print(f"images served from {server.files_url}", flush=True)
        print(f"export RADIENT_BASE_URL={server.base_url} RADIENT_API_KEY={shown_key}", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point (``radient-server``): 0 after a clean stop, 2 bad options, 1 no bind."""
    args = parser().parse_args(argv)
    try:
        config = build_config(args)
    except ValueError as exc:
        print(f"radient-server: error: {exc}", file=sys.stderr)
        return 2
    # A generated key must be shown to be usable; a key the user typed is never echoed.
    shown = "anything" if config.api_key is None else "<your --api-key>"
    if args.random_key:
        shown = config.api_key or shown
    try:
        asyncio.run(serve(config, shown))
    except OSError as exc:
        where = f"{config.host}:{config.port}"
        print(
            f"radient-server: error: cannot serve on {where}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:  # pragma: no cover - a signal arriving before the handlers exist
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
