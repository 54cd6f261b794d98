"""The ``radient`` click group, its ``generate`` and ``batch`` commands, and ``main``.

The group turns a usage error into one ``error: …`` line; ``generate`` follows one job on a
spinner and ``batch`` runs a file of items (``_batch``) with live progress (``_terminal``).
The other commands live in ``_jobs`` (status, download, providers) and ``_serve`` (serve), and
are added to the group here, so those modules need not import this one.
"""

from __future__ import annotations

import functools
import json
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import click

from radient_async._errors import DownloadError
from radient_async._models import GenerationResult, ImageSize
from radient_async._paths import check_output_folder

from ._batch import BatchJob, load_items
from ._gallery import write_gallery
from ._jobs import download, providers, status
from ._options import OUTPUT, SIZE, check_request_options, usage_line
from ._run import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_OTHER,
    EXIT_USAGE,
    CliError,
    Runner,
    Settings,
    connection_options,
    describe,
    emit,
    exit_code_for,
    note,
    settings_for,
    stderr_console,
)
from ._saving import Existing, existing_options, save_result
from ._serve import serve
from ._terminal import Tally, make_display

if TYPE_CHECKING:
    from radient_async._session import Session

__all__ = ["SIZE", "cli", "main"]


class _Group(click.Group):
    """The ``radient`` group: a usage error is one line ``error: …`` on stderr, exit 2."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        prog_name = prog_name or "radient"
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as exc:
            note(usage_line(exc))
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            note(f"error: {exc.format_message()}")
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            note("interrupted")
            sys.exit(EXIT_INTERRUPTED)
        sys.exit(code if isinstance(code, int) else EXIT_OK)


@click.group(
    "radient",
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXIT_CODES_HELP,
)
@connection_options
@click.version_option(package_name="radient-async", prog_name="radient")
@click.pass_context
def cli(ctx: click.Context, /, **options: Any) -> None:
    """Generate images with Radient from the command line.

    Client commands use RADIENT_BASE_URL and RADIENT_API_KEY (or --base-url and --api-key), or,
    with --local, an embedded local server that needs no account:

        radient generate --local "a lighthouse at dusk" -o images/
    """
    ctx.obj = Settings().merged(options)


# The commands defined in their own modules.
cli.add_command(status)
cli.add_command(download)
cli.add_command(providers)
cli.add_command(serve)


# -- generate -------------------------------------------------------------------------------------


class _StatusLine:
    """How ``generate``'s job is doing: a spinner on a terminal, else one stderr line a change."""

    def __init__(self) -> None:
        console = stderr_console()
        self._status = console.status("") if console.is_terminal else None
        if self._status is not None:
            self._status.start()

    def update(self, text: str) -> None:
        if self._status is None:
            note(text)
            return
        from rich.text import Text

        self._status.update(Text(text))

    def close(self) -> None:
        if self._status is not None:
            self._status.stop()


async def _generate(
    session: Session,
    runner: Runner,
    prompt: str,
    output: str,
    fields: Mapping[str, Any],
    existing: Existing,
) -> tuple[GenerationResult, list[str]]:
    """Submit, follow the job's status changes on stderr, then download into ``output``."""
    await anyio.to_thread.run_sync(check_output_folder, output, "-o/--output")  # before paying
    status = _StatusLine()
    try:
        job = await session.submit(prompt, **fields)
        rid = job.request_id
        if not runner.settings.local:  # a local server's jobs end with the command
            runner.interrupt_hint = f"job {rid} may still finish: radient download {rid} -o DIR"
        status.update(f"submitted {rid}")
        started = time.monotonic()
        async for update in job.updates():
            after = f" after {time.monotonic() - started:.1f}s" if update.status.is_terminal else ""
            status.update(f"{rid}: {update.raw_status}{after}")
        result = await job
        status.update(f"{rid}: downloading {len(result.images)} image(s) into {output}")
        paths = await _save(runner, result, output, existing)
        runner.interrupt_hint = ""
        return result, paths
    finally:
        status.close()


async def _save(
    runner: Runner, result: GenerationResult, output: str, existing: Existing
) -> list[str]:
    """Save the images; if that fails, say how to save them later (they are paid for)."""
    try:
        paths, kept = await save_result(result, output, existing)
    except (DownloadError, OSError) as exc:
        if runner.settings.local:  # the local server, and its job, end with the command
            raise
        rid = result.request_id
        hint = f"; job {rid} is done: save its images with radient download {rid} -o DIR"
        raise CliError(describe(exc) + hint, exit_code_for(exc)) from None
    for path in kept:
        note(f"kept {path} (already there)")
    return paths


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("prompt")
@click.option("-n", "--num-images", type=int, default=1, show_default=True, help="1 to 8.")
@click.option(
    "--size", type=SIZE, help="A size name (square_hd, square, landscape_16_9, …) or WxH."
)
@click.option("--provider", help="Provider id (see `radient providers`).")
@click.option("--seed", type=int, help="Seed, for reproducible images.")
@click.option("--source", metavar="FILE|URL", help="Image-to-image: the source image.")
@click.option("--strength", type=float, help="With --source: 0 follows the prompt, 1 keeps it.")
@click.option("--sync", is_flag=True, help="Ask for the finished result in the same request.")
@OUTPUT
@existing_options
@connection_options
def generate(
    prompt: str,
    num_images: int,
    size: str | ImageSize | None,
    provider: str | None,
    seed: int | None,
    source: str | None,
    strength: float | None,
    sync: bool,
    output: str,
    overwrite: bool,
    skip_existing: bool,
    **options: Any,
) -> None:
    """Generate images for PROMPT; prints the saved paths.

    Status changes go to stderr (a spinner on a terminal), the saved paths to stdout (with --json:
    one JSON object with the request id, seed, paths and URLs). Every option is checked before
    anything is started.
    """
    existing = Existing.from_flags(overwrite, skip_existing)
    runner = Runner(settings_for(options))
    fields = {
        "num_images": num_images,
        "image_size": size,
        "provider": provider,
        "seed": seed,
        "source": source,
        "strength": strength,
        "sync_mode": sync,
    }
    runner.guard(lambda: check_request_options(fields, prompt))
    result, paths = runner.run(
        lambda session: _generate(session, runner, prompt, output, fields, existing)
    )
    if runner.settings.as_json:
        emit(json.dumps(_result_json(result, paths)))
    else:
        for path in paths:
            emit(path)


def _result_json(result: GenerationResult, paths: Sequence[str]) -> dict[str, Any]:
    return {
        "request_id": result.request_id,
        "status": "COMPLETED",
        "provider": result.provider,
        "seed": result.seed,
        "prompt": result.prompt,
        "paths": list(paths),
        "urls": [image.url for image in result.images],
    }


# -- batch ----------------------------------------------------------------------------------------


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@OUTPUT
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    help="Items in flight at once  [default: the session's job limit, 1000]",
)
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False),
    help="Resumable manifest (JSONL): rerun the same command to continue where it stopped.",
)
@click.option("--gallery", type=click.Path(dir_okay=False), help="Write an HTML gallery here.")
@click.option("--size", type=SIZE, help="Default size for items that set none.")
@click.option("-n", "--num-images", type=int, help="Default number of images per item.")
@click.option("--provider", help="Default provider for items that set none.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Live progress.")
@existing_options
@connection_options
def batch(
    file: str,
    output: str,
    concurrency: int | None,
    manifest: str | None,
    gallery: str | None,
    size: str | ImageSize | None,
    num_images: int | None,
    provider: str | None,
    progress: bool,
    overwrite: bool,
    skip_existing: bool,
    **options: Any,
) -> None:
    """Generate images for every prompt in FILE.

    FILE holds one prompt per line (blank lines and # comments are skipped), or one JSON request
    object per line (a .jsonl name, or a first character "{"), such as
    {"prompt": "a fox", "image_size": "square", "num_images": 2, "seed": 7}.
    Every option and item is checked before the first is submitted. Saved paths go to stdout
    (with --json: one JSON line per item), live progress and a summary to stderr.
    """
    existing = Existing.from_flags(overwrite, skip_existing)
    runner = Runner(settings_for(options))
    given = {"image_size": size, "num_images": num_images, "provider": provider}
    defaults = {name: value for name, value in given.items() if value is not None}
    runner.guard(lambda: check_request_options(defaults))  # the options, as in generate
    items = runner.guard(lambda: load_items(file, defaults))
    runner.guard(lambda: check_output_folder(output, "-o/--output"))
    for path, option in ((manifest, "--manifest"), (gallery, "--gallery")):
        if path:
            runner.guard(functools.partial(_check_file_path, path, option))
    if manifest:
        runner.interrupt_hint = f"rerun the same command to continue ({manifest} keeps the place)"
    tally = Tally(total=len(items))

    async def work(session: Session) -> None:
        display = make_display(progress, len(items))
        job = BatchJob(
            items, defaults, output, concurrency, manifest, runner.settings.as_json, display, tally
        )
        job.gallery = [] if gallery else None
        job.existing = existing
        job.download_hint = not runner.settings.local
        try:
            await job.run(session)
        finally:
            display.stop()
        if gallery:
            await anyio.to_thread.run_sync(write_gallery, gallery, job.gallery_entries())

    runner.run(work)
    if gallery:
        note(f"gallery: {gallery}")
    note(tally.summary(output))
    if tally.failed:
        raise click.exceptions.Exit(EXIT_FAILED)


def _check_file_path(path: str, option: str) -> None:
    """A file the batch will write: its folder exists or can be made, and it is not a folder."""
    check_output_folder(str(Path(path).resolve().parent), option)
    if Path(path).is_dir():
        raise CliError(f"{option}: {path} is a folder, not a file", EXIT_USAGE)


# -- entry point ----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """The ``radient`` console script: run the command, return its exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = cli.main(args=args, prog_name="radient", standalone_mode=False)
    except click.exceptions.Abort:  # Ctrl-C outside the event loop (while parsing, say)
        note("interrupted")
        return EXIT_INTERRUPTED
    except click.UsageError as exc:
        note(usage_line(exc))
        return exc.exit_code
    except click.ClickException as exc:
        note(f"error: {exc.format_message()}")
        return exc.exit_code
    except Exception as exc:  # a bug outside the guarded work: still one line
        if "--debug" in args:
            traceback.print_exc()
        note(f"error: {describe(exc)}")
        return EXIT_OTHER
    return code if isinstance(code, int) else EXIT_OK
