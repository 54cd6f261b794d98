"""``radient status``, ``download`` and ``providers``: asking the API, without generating.

``status`` and ``download`` act on a job already submitted, by its request id (so they refuse
``--local``, whose server is new and empty for each command); ``providers`` lists what the API
offers. ``_commands`` adds them to the ``radient`` group.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any, cast

import anyio.to_thread
import click

from radient_async._models import JobUpdate
from radient_async._paths import check_output_folder

from ._options import OUTPUT
from ._run import (
    EXIT_API,
    EXIT_CODES_HELP,
    EXIT_USAGE,
    CliError,
    Runner,
    connection_options,
    emit,
    note,
    settings_for,
)
from ._saving import Existing, existing_options, save_result

if TYPE_CHECKING:
    from radient_async._session import Session

__all__ = ["download", "providers", "status"]

NO_LOCAL_JOBS = (
    "--local starts a new, empty server for each command, so it knows no jobs from earlier "
    "runs: start one with `radient serve` and point RADIENT_BASE_URL and RADIENT_API_KEY at it"
)


def _refuse_local(runner: Runner) -> None:
    if runner.settings.local:
        runner.fail(CliError(NO_LOCAL_JOBS, EXIT_USAGE))


async def _status(session: Session, request_id: str, provider: str | None) -> dict[str, Any]:
    """The job's current state: its first observation, after which polling stops."""
    job = session.job(request_id, provider)
    updates = cast(AsyncGenerator[JobUpdate, None], job.updates())
    async with contextlib.aclosing(updates):
        async for update in updates:
            job.cancel()
            return {
                "request_id": update.request_id,
                "status": update.raw_status,
                "provider": update.provider or job.provider,
                "error": update.error,
                "seed": update.seed,
                "urls": [image.url for image in update.images],
            }
    await job  # no observation: raises why (unknown job, no access, unreachable)
    raise CliError(f"no status for {request_id}", EXIT_API)  # pragma: no cover


@click.command(epilog=EXIT_CODES_HELP)
@click.argument("request_id")
@click.option("--provider", help="The provider the job was submitted to.")
@connection_options
def status(request_id: str, provider: str | None, **options: Any) -> None:
    """Show the status of job REQUEST_ID (exit 0 whatever it is)."""
    runner = Runner(settings_for(options))
    _refuse_local(runner)
    info = runner.run(lambda session: _status(session, request_id, provider))
    if runner.settings.as_json:
        emit(json.dumps(info))
        return
    reason = f" ({info['error']})" if info["error"] else ""
    emit(f"{info['request_id']}: {info['status']}{reason}")


@click.command(epilog=EXIT_CODES_HELP)
@click.argument("request_id")
@click.option("--provider", help="The provider the job was submitted to.")
@OUTPUT
@existing_options
@connection_options
def download(
    request_id: str,
    provider: str | None,
    output: str,
    overwrite: bool,
    skip_existing: bool,
    **options: Any,
) -> None:
    """Wait for job REQUEST_ID to finish and save its images; prints the saved paths."""
    existing = Existing.from_flags(overwrite, skip_existing)
    runner = Runner(settings_for(options))
    _refuse_local(runner)

    async def work(session: Session) -> list[str]:
        await anyio.to_thread.run_sync(check_output_folder, output, "-o/--output")
        result = await session.job(request_id, provider)
        paths, kept = await save_result(result, output, existing)
        for path in kept:
            note(f"kept {path} (already there)")
        return paths

    paths = runner.run(work)
    if runner.settings.as_json:
        emit(json.dumps({"request_id": request_id, "paths": paths}))
    else:
        for path in paths:
            emit(path)


@click.command(epilog=EXIT_CODES_HELP)
@connection_options
def providers(**options: Any) -> None:
    """List the providers the API offers."""
    runner = Runner(settings_for(options))

    async def work(session: Session) -> tuple[str, ...]:
        return await session.providers()

    names = runner.run(work)
    if runner.settings.as_json:
        emit(json.dumps({"providers": list(names)}))
    else:
        for name in names:
            emit(name)
