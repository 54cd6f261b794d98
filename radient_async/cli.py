"""The ``radient`` command: generate, batch, status, download, providers, serve.

Results go to stdout (paths, or JSON with ``--json``); progress and errors go to stderr as one line
(``--debug`` adds tracebacks and DEBUG logs, never the API key). ``--local`` runs the embedded local
server in-process, so everything works with no account.

Exit codes: 0 ok · 2 usage error · 3 configuration or authentication error · 4 API or connection
error · 5 a job failed (in a batch: any item failed) · 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import os
import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

from . import _errors as errors
from ._batch import BatchOutcome
from ._models import GenerationResult, ImageSize
from ._session import Session

__all__ = ["EXIT_API", "EXIT_CONFIG", "EXIT_FAILED", "EXIT_INTERRUPTED", "cli", "main"]

EXIT_CONFIG, EXIT_API, EXIT_FAILED, EXIT_INTERRUPTED = 3, 4, 5, 130
T = TypeVar("T")


class Failed(Exception):
    """Some jobs failed; the exit code says so after the results were printed."""


def _exit_code(exc: BaseException) -> int:
    if isinstance(
        exc, (errors.ConfigurationError, errors.AuthenticationError, errors.PermissionDeniedError)
    ):
        return EXIT_CONFIG
    if isinstance(exc, (errors.ValidationError, click.UsageError)):
        return 2
    if isinstance(exc, (errors.JobError, Failed)):
        return EXIT_FAILED
    return EXIT_API


def _parse_size(value: str | None) -> str | ImageSize | None:
    """``square_hd``-style names, or ``WxH``."""
    if value is None or "x" not in value.lower():
        return value
    width, _, height = value.lower().partition("x")
    try:
        return ImageSize(int(width), int(height))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not WIDTHxHEIGHT", param_hint="--size") from None


class Context:
    """Options shared by the client commands."""

    def __init__(
        self,
        *,
        local: bool,
        api_key: str | None,
        base_url: str | None,
        as_json: bool,
        debug: bool,
        latency: float,
    ) -> None:
        self.local, self.api_key, self.base_url = local, api_key, base_url
        self.as_json, self.debug, self.latency = as_json, debug, latency

    @contextlib.asynccontextmanager
    async def session(self, **options: Any) -> AsyncIterator[Session]:
        """A session against the real API, or against an in-process local server."""
        if not self.local:
            async with Session(self.api_key, self.base_url, **options) as session:
                yield session
            return
        from .server import LocalServer, ServerConfig

        key = secrets.token_urlsafe(16)
        config = ServerConfig(api_key=key, latency=self.latency, latency_jitter=self.latency / 4)
        async with LocalServer(config) as server:
            _note(f"local server at {server.base_url}")
            async with Session(key, server.base_url, **options) as session:
                yield session

    def run(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work`` on a fresh event loop, turning failures into one line and an exit code."""
        if self.debug:
            logging.basicConfig(
                level=logging.DEBUG, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
            )
        try:
            return asyncio.run(_call(work))
        except KeyboardInterrupt:
            _note("interrupted")
            raise SystemExit(EXIT_INTERRUPTED) from None
        except (errors.RadientError, Failed) as exc:
            if self.debug:
                import traceback

                traceback.print_exc()
            click.echo(f"error: {exc}", err=True)
            raise SystemExit(_exit_code(exc)) from None


async def _call(work: Callable[[], Awaitable[T]]) -> T:
    return await work()


def _note(message: str) -> None:
    click.echo(message, err=True)


pass_context = click.make_pass_decorator(Context)


def _client_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Connection options every client command accepts (also before the command name)."""
    options = [
        click.option(
            "--local",
            is_flag=True,
            default=None,
            help="Run against an embedded local server (no account needed).",
        ),
        click.option("--json", "as_json", is_flag=True, default=None, help="JSON on stdout."),
        click.option("--debug", is_flag=True, default=None, help="DEBUG logs and tracebacks."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _merge(ctx: Context, local: bool | None, as_json: bool | None, debug: bool | None) -> Context:
    if local:
        ctx.local = True
    if as_json:
        ctx.as_json = True
    if debug:
        ctx.debug = True
    return ctx


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--api-key", envvar="RADIENT_API_KEY", help="API key (or RADIENT_API_KEY).")
@click.option("--base-url", envvar="RADIENT_BASE_URL", help="API base URL (or RADIENT_BASE_URL).")
@click.option("--local", is_flag=True, help="Run against an embedded local server.")
@click.option(
    "--local-latency",
    type=float,
    default=0.5,
    show_default=True,
    help="Simulated job time of the embedded server.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")
@click.option("--debug", is_flag=True, help="DEBUG logs and tracebacks on stderr.")
@click.version_option(package_name="radient-async")
@click.pass_context
def cli(
    ctx: click.Context,
    api_key: str | None,
    base_url: str | None,
    local: bool,
    local_latency: float,
    as_json: bool,
    debug: bool,
) -> None:
    """Generate images with Radient from the command line.

    Exit codes: 0 ok, 2 usage error, 3 configuration/auth error, 4 API or connection error,
    5 a job failed, 130 interrupted.
    """
    ctx.obj = Context(
        local=local,
        api_key=api_key,
        base_url=base_url,
        as_json=as_json,
        debug=debug,
        latency=local_latency,
    )


@cli.command()
@click.argument("prompt")
@click.option("-n", "--num-images", type=int, default=1, show_default=True)
@click.option("--size", help="A size name (square_hd, landscape_16_9, …) or WIDTHxHEIGHT.")
@click.option("--provider")
@click.option("--seed", type=int)
@click.option("--source", help="Image-to-image source: a file path or an http(s) URL.")
@click.option("--strength", type=float, help="0 (follow the prompt) .. 1 (keep the source).")
@click.option("--sync", is_flag=True, help="Ask for the result in the same request.")
@click.option("-o", "--output", type=click.Path(file_okay=False), default=".", show_default=True)
@_client_options
@pass_context
def generate(
    ctx: Context,
    prompt: str,
    num_images: int,
    size: str | None,
    provider: str | None,
    seed: int | None,
    source: str | None,
    strength: float | None,
    sync: bool,
    output: str,
    local: bool | None,
    as_json: bool | None,
    debug: bool | None,
) -> None:
    """Generate images for PROMPT and save them to OUTPUT."""
    ctx = _merge(ctx, local, as_json, debug)
    image_size = _parse_size(size)

    async def work() -> tuple[GenerationResult, list[str]]:
        async with ctx.session() as session:
            job = await session.submit(
                prompt,
                num_images=num_images,
                image_size=image_size,
                provider=provider,
                seed=seed,
                source=source,
                strength=strength,
                sync_mode=sync,
            )
            _note(f"submitted {job.request_id}")
            async for update in job.updates():
                _note(f"{job.request_id}: {update.raw_status}")
            result = await job
            return result, await result.download(output)

    result, paths = ctx.run(work)
    if ctx.as_json:
        click.echo(
            json.dumps(
                {
                    "request_id": result.request_id,
                    "provider": result.provider,
                    "seed": result.seed,
                    "paths": paths,
                    "urls": [image.url for image in result.images],
                }
            )
        )
    else:
        click.echo("\n".join(paths))


def _read_items(path: str) -> Iterator[str | dict[str, Any]]:
    """Prompts from a text file (one per line) or request objects from JSONL."""
    with open(path, encoding="utf-8") as handle:
        first = handle.read(1)
        handle.seek(0)
        as_jsonl = path.endswith(".jsonl") or first == "{"
        for number, line in enumerate(handle, 1):
            text = line.strip()
            if not text or (text.startswith("#") and not as_jsonl):
                continue
            if not as_jsonl:
                yield text
                continue
            try:
                item = json.loads(text)
            except json.JSONDecodeError:
                raise click.BadParameter(f"line {number} is not JSON", param_hint="FILE") from None
            if not isinstance(item, dict):
                raise click.BadParameter(f"line {number} is not an object", param_hint="FILE")
            yield item


def _prompt_of(item: object) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        return str(item.get("prompt", ""))
    return str(getattr(item, "prompt", ""))


def write_gallery(path: str, outcomes: list[BatchOutcome]) -> None:
    """A static HTML page showing every downloaded image with its prompt."""
    base = Path(path).resolve().parent
    figures = []
    for outcome in sorted(outcomes, key=lambda o: o.index):
        prompt = _prompt_of(outcome.item)
        for file in outcome.paths:
            src = html.escape(os.path.relpath(Path(file).resolve(), base), quote=True)
            figures.append(
                f'<figure><img src="{src}" loading="lazy"/>'
                f"<figcaption>{html.escape(prompt)}</figcaption></figure>"
            )
    page = (
        "<!doctype html><meta charset=utf-8><title>radient batch</title><style>"
        "body{font-family:sans-serif;display:flex;flex-wrap:wrap}figure{width:256px;margin:6px}"
        "img{max-width:256px;max-height:256px}figcaption{font-size:small}</style>"
        + "".join(figures)
    )
    temp = f"{path}.tmp"
    Path(temp).write_text(page, encoding="utf-8")
    os.replace(temp, path)


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(file_okay=False), default=".", show_default=True)
@click.option("--concurrency", type=click.IntRange(min=1), help="Items in flight at once.")
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False),
    help="Resumable manifest (JSONL); rerun to continue where it stopped.",
)
@click.option("--gallery", type=click.Path(dir_okay=False), help="Write an HTML gallery here.")
@click.option("--size", help="Default size for prompt lines.")
@click.option("-n", "--num-images", type=int, help="Default images per prompt line.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@_client_options
@pass_context
def batch(
    ctx: Context,
    file: str,
    output: str,
    concurrency: int | None,
    manifest: str | None,
    gallery: str | None,
    size: str | None,
    num_images: int | None,
    progress: bool,
    local: bool | None,
    as_json: bool | None,
    debug: bool | None,
) -> None:
    """Generate images for every prompt in FILE (text lines or JSONL requests)."""
    ctx = _merge(ctx, local, as_json, debug)
    defaults: dict[str, Any] = {}
    if size:
        defaults["image_size"] = _parse_size(size)
    if num_images:
        defaults["num_images"] = num_images

    async def work() -> list[BatchOutcome]:
        outcomes: list[BatchOutcome] = []
        async with ctx.session() as session:
            async for outcome in session.map(
                _read_items(file),
                download_to=output,
                concurrency=concurrency,
                manifest=manifest,
                progress="rich" if progress else None,
                **defaults,
            ):
                outcomes.append(outcome)
                _report(ctx, outcome)
        return outcomes

    outcomes = ctx.run(work)
    if gallery:
        write_gallery(gallery, outcomes)
        _note(f"gallery: {gallery}")
    failed = sum(not o.ok for o in outcomes)
    images = sum(len(o.paths) for o in outcomes)
    _note(f"done: {len(outcomes) - failed} ok, {failed} failed, {images} images in {output}")
    if failed:
        raise SystemExit(EXIT_FAILED)


def _report(ctx: Context, outcome: BatchOutcome) -> None:
    if ctx.as_json:
        click.echo(
            json.dumps(
                {
                    "index": outcome.index,
                    "request_id": outcome.request_id,
                    "ok": outcome.ok,
                    "paths": list(outcome.paths),
                    "resumed": outcome.resumed,
                    "error": None if outcome.ok else str(outcome.error),
                }
            )
        )
    elif outcome.ok:
        click.echo("\n".join(outcome.paths))
    else:
        _note(f"item {outcome.index} failed: {outcome.error}")


@cli.command()
@click.argument("request_id")
@click.option("--provider")
@_client_options
@pass_context
def status(
    ctx: Context,
    request_id: str,
    provider: str | None,
    local: bool | None,
    as_json: bool | None,
    debug: bool | None,
) -> None:
    """Show a job's current status."""
    ctx = _merge(ctx, local, as_json, debug)

    async def work() -> dict[str, Any]:
        async with ctx.session() as session:
            job = session.job(request_id, provider)
            async for update in job.updates():
                return {
                    "request_id": update.request_id,
                    "status": update.raw_status,
                    "provider": update.provider,
                    "error": update.error,
                    "images": [image.url for image in update.images],
                }
            await job  # raises the reason the job could not be observed
            return {}

    info = ctx.run(work)
    click.echo(json.dumps(info) if ctx.as_json else f"{info['request_id']}: {info['status']}")


@cli.command()
@click.argument("request_id")
@click.option("--provider")
@click.option("-o", "--output", type=click.Path(file_okay=False), default=".", show_default=True)
@_client_options
@pass_context
def download(
    ctx: Context,
    request_id: str,
    provider: str | None,
    output: str,
    local: bool | None,
    as_json: bool | None,
    debug: bool | None,
) -> None:
    """Wait for a job and download its images."""
    ctx = _merge(ctx, local, as_json, debug)

    async def work() -> list[str]:
        async with ctx.session() as session:
            return await (await session.job(request_id, provider)).download(output)

    paths = ctx.run(work)
    click.echo(json.dumps({"paths": paths}) if ctx.as_json else "\n".join(paths))


@cli.command()
@_client_options
@pass_context
def providers(ctx: Context, local: bool | None, as_json: bool | None, debug: bool | None) -> None:
    """List the available providers."""
    ctx = _merge(ctx, local, as_json, debug)

    async def work() -> tuple[str, ...]:
        async with ctx.session() as session:
            return await session.providers()

    names = ctx.run(work)
    click.echo(json.dumps({"providers": list(names)}) if ctx.as_json else "\n".join(names))


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def serve(ctx: click.Context) -> None:
    """Run the local server (options: see `radient serve --help-server`)."""
    from .server.__main__ import main as server_main

    args = list(ctx.args)
    if "--help-server" in args:
        args = ["--help"]
    raise SystemExit(server_main(args))


def main(argv: list[str] | None = None) -> int:
    """Console entry point."""
    try:
        cli.main(args=argv, prog_name="radient", standalone_mode=False)
    except click.exceptions.Abort:
        _note("interrupted")
        return EXIT_INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
