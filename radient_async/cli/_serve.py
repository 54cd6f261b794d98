"""``radient serve``: the local Radient-compatible server, in the foreground.

The server itself is ``radient_async.server`` (the ``server`` extra, loaded only by this command);
here are its options, the ``ServerConfig`` they make, and the loop that prints where to connect
and serves until Ctrl-C or SIGTERM. ``_commands`` adds the command to the ``radient`` group.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import click

from ._run import (
    EXIT_CODES_HELP,
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Runner,
    Settings,
    emit,
    note,
    server_module,
)

if TYPE_CHECKING:
    from radient_async.server import ServerConfig

__all__ = ["serve"]


async def _serve(config: ServerConfig, shown_key: str | None) -> None:
    """Serve until Ctrl-C or SIGTERM, printing where (and with which key) to connect."""
    stop = asyncio.Event()
    with contextlib.suppress(NotImplementedError):  # Windows' loop has no signal handlers
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    server = server_module().LocalServer(config)
    try:
        await server.start()
    except OSError as exc:
        await server.stop()
        where = f"{config.host}:{config.port}"
        raise CliError(f"cannot serve on {where}: {exc.strerror or exc}", EXIT_CONFIG) from None
    try:
        emit(f"Radient local server at {server.base_url} (Ctrl-C stops it)")
        if server.files_url:
            emit(f"images served from {server.files_url}")
        key = "" if shown_key is None else f" RADIENT_API_KEY={shown_key}"
        emit(f"export RADIENT_BASE_URL={server.base_url}{key}")
        if shown_key is None:
            note("clients must send the key given with --api-key")
        await stop.wait()
    finally:
        await server.stop()
    note("stopped")  # after SIGTERM; after Ctrl-C the runner says it


@click.command(epilog=EXIT_CODES_HELP)
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--api-key", "server_key", help="Require this key  [default: a generated one]")
@click.option("--no-auth", is_flag=True, help="Accept any key.")
@click.option("--latency", type=click.FloatRange(min=0), default=0.0, help="Mean job time (s).")
@click.option("--jitter", type=click.FloatRange(min=0), default=0.0, help="± spread of job time.")
@click.option("--rate-limit", type=click.FloatRange(min=0, min_open=True), help="Requests/s.")
@click.option(
    "--fault-rate", type=click.FloatRange(0, 1), default=0.0, help="Fraction of requests to break."
)
@click.option("--separate-image-origin", is_flag=True, help="Serve images from a second port.")
@click.option("--poll-hint", is_flag=True, help="Send poll-after-ms while jobs run.")
@click.option("--seed", type=int, help="Seed for latency and fault randomness.")
@click.pass_obj
def serve(settings: Settings, /, server_key: str | None, no_auth: bool, **fields: Any) -> None:
    """Run the local Radient-compatible server in the foreground; Ctrl-C stops it (exit 0).

    Prints the base URL and the key to use: a generated one unless --api-key or --no-auth.
    Port 0 picks a free port.
    """
    runner = Runner(settings)
    server_key = server_key or settings.api_key
    key = None if no_auth else server_key or "local-" + secrets.token_urlsafe(16)
    shown = "any" if key is None else None if server_key else key
    config = runner.guard(lambda: _server_config(key, fields))
    runner.run_async(lambda: _serve(config, shown), interrupted=EXIT_OK, interrupted_note="stopped")


def _server_config(key: str | None, fields: Mapping[str, Any]) -> ServerConfig:
    server = server_module()
    try:
        return cast(
            "ServerConfig",
            server.ServerConfig(
                host=fields["host"],
                port=fields["port"],
                api_key=key,
                latency=fields["latency"],
                latency_jitter=fields["jitter"],
                rate_limit=fields["rate_limit"],
                faults=server.FaultConfig(rate=fields["fault_rate"]),
                separate_image_origin=fields["separate_image_origin"],
                poll_hint=fields["poll_hint"],
                seed=fields["seed"],
            ),
        )
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
