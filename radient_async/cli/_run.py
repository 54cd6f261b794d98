"""Running one command: settings, one event loop, one error line, one exit code.

Every client command hands its async work to ``Runner.run``, which opens a ``Session`` (against the
configured API, or against an in-process local server with ``--local``), runs the work with
``asyncio.run`` and turns whatever ends it into the documented exit code. Ctrl-C cancels the work,
so sessions, downloads and the local server shut down cleanly before the command exits with 130.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import sys
import traceback
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import attrs
import click

from radient_async._errors import (
    AuthenticationError,
    ConfigurationError,
    JobError,
    NotFoundError,
    PermissionDeniedError,
    RadientError,
    ValidationError,
)
from radient_async._session import Session

from ._options import as_option_error, in_cli_terms

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "EXIT_API",
    "EXIT_CODES_HELP",
    "EXIT_CONFIG",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_OTHER",
    "EXIT_USAGE",
    "STOP_AUTH",
    "CliError",
    "Runner",
    "Settings",
    "connection_options",
    "emit",
    "exit_code_for",
    "note",
    "server_module",
    "settings_for",
    "stderr_console",
]

EXIT_OK, EXIT_OTHER, EXIT_USAGE, EXIT_CONFIG, EXIT_API, EXIT_FAILED = 0, 1, 2, 3, 4, 5
EXIT_INTERRUPTED = 130
# The epilog of every command's --help.
EXIT_CODES_HELP = """\b
Exit codes:
  0    success
  1    unexpected error (a local file could not be read or written; a bug)
  2    usage or validation error
  3    configuration or authentication error (no key, 401/403)
  4    API or connection error
  5    a job failed (batch: any item failed)
  130  interrupted (Ctrl-C); a batch with --manifest resumes when rerun"""
# Errors no retry or other item can get past: they end a batch at once, with EXIT_CONFIG.
STOP_AUTH = (AuthenticationError, PermissionDeniedError, ConfigurationError)
T = TypeVar("T")
_LOG = logging.getLogger("radient_async")


class CliError(Exception):
    """A failure the command reports as one line, with its exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def exit_code_for(exc: BaseException) -> int:
    """The documented exit code for an exception that ended a command."""
    if isinstance(exc, CliError):
        return exc.code
    if isinstance(exc, ValidationError):
        return EXIT_USAGE
    if isinstance(exc, STOP_AUTH):
        return EXIT_CONFIG
    if isinstance(exc, JobError):
        return EXIT_FAILED
    if isinstance(exc, RadientError):  # API errors, connection errors, downloads, bad responses
        return EXIT_API
    return EXIT_OTHER


def describe(exc: BaseException) -> str:
    """One line saying what went wrong, in CLI terms (flags, not Python arguments)."""
    if isinstance(exc, ValidationError):
        exc = as_option_error(exc)
    if isinstance(exc, RadientError):
        return in_cli_terms(exc)
    if isinstance(exc, CliError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror}"
    return f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)"


@attrs.define
class Settings:
    """Where and how to connect; set before the command name or on it (the command wins)."""

    api_key: str | None = None
    base_url: str | None = None
    local: bool = False
    local_latency: float = 0.5
    timeout: float | None = None
    as_json: bool = False
    debug: bool = False

    def merged(self, options: Mapping[str, Any]) -> Settings:
        """These settings with every option that was given (``None`` means not given)."""
        known = {a.name for a in attrs.fields(Settings)}
        given = {k: v for k, v in options.items() if k in known and v is not None}
        return attrs.evolve(self, **given)


def connection_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The connection and output options, accepted before the command name and on each command."""
    options = [
        click.option("--api-key", help="API key (default: $RADIENT_API_KEY). Never printed."),
        click.option(
            "--base-url", help="API base URL (default: $RADIENT_BASE_URL, else the Radient API)."
        ),
        click.option(
            "--local",
            is_flag=True,
            default=None,
            help="Start an embedded local server with a random key and use it (no account).",
        ),
        click.option(
            "--local-latency",
            type=click.FloatRange(min=0),
            default=None,
            metavar="SECONDS",
            help="Simulated job time of the --local server  [default: 0.5]",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            metavar="SECONDS",
            help="Bound on one API call, retries included  [default: 60]",
        ),
        click.option("--json", "as_json", is_flag=True, default=None, help="JSON on stdout."),
        click.option(
            "--debug", is_flag=True, default=None, help="DEBUG logs and tracebacks on stderr."
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def settings_for(options: Mapping[str, Any]) -> Settings:
    """The group's settings overridden by the options given on the running command."""
    base = click.get_current_context().find_object(Settings) or Settings()
    return base.merged(options)


class Runner:
    """Runs a command's async work with ``asyncio.run`` and turns failures into exit codes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.interrupt_hint = ""
        self._secrets = [s for s in (settings.api_key, os.environ.get("RADIENT_API_KEY")) if s]

    def run(self, work: Callable[[Session], Coroutine[Any, Any, T]]) -> T:
        """Open a session (local or remote), run ``work`` in it, and report the outcome."""
        return self.run_async(lambda: self._with_session(work))

    def run_async(
        self,
        main: Callable[[], Coroutine[Any, Any, T]],
        *,
        interrupted: int = EXIT_INTERRUPTED,
        interrupted_note: str = "interrupted",
    ) -> T:
        """``asyncio.run(main())``; Ctrl-C exits with ``interrupted`` after a clean shutdown."""
        with self._debug_logging():
            try:
                return asyncio.run(main())
            except (KeyboardInterrupt, asyncio.CancelledError):
                hint = f"; {self.interrupt_hint}" if self.interrupt_hint else ""
                note(interrupted_note + hint)
                raise click.exceptions.Exit(interrupted) from None
            except Exception as exc:
                self.fail(exc)

    def guard(self, func: Callable[[], T]) -> T:
        """Run synchronous ``func`` with the same error reporting as the async work."""
        try:
            return func()
        except Exception as exc:
            self.fail(exc)

    def fail(self, exc: BaseException) -> NoReturn:
        """Print ``exc`` as one line (after its traceback with ``--debug``) and exit."""
        if isinstance(exc, BrokenPipeError):  # whoever read stdout has gone: stop quietly
            _silence_stdout()
            raise click.exceptions.Exit(EXIT_OTHER) from None
        if self.settings.debug:
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            click.echo(self.redact(text.rstrip()), err=True)
        click.echo(f"error: {self.redact(describe(exc) + self.hint(exc))}", err=True)
        raise click.exceptions.Exit(exit_code_for(exc)) from None

    def hint(self, exc: BaseException) -> str:
        """What to try, where a failure suggests it: a base URL without ``/v1`` that 404s."""
        if not isinstance(exc, NotFoundError) or self.settings.local:
            return ""
        base = (self.settings.base_url or os.environ.get("RADIENT_BASE_URL") or "").rstrip("/")
        if not base or base.endswith("/v1"):
            return ""
        return f" (hint: the base URL usually ends in /v1: --base-url {base}/v1)"

    def redact(self, text: str) -> str:
        """``text`` with every API key known to this run masked.

        A short key (a test key such as ``k``) is masked only where it stands as a word, so it
        does not turn every word holding that letter into ``***``; a real key, everywhere.
        """
        for secret in self._secrets:
            if len(secret) >= 8:
                text = text.replace(secret, "***")
            else:
                text = re.sub(rf"(?<![\w-]){re.escape(secret)}(?![\w-])", "***", text)
        return text

    @contextlib.contextmanager
    def _debug_logging(self) -> Iterator[None]:
        """With ``--debug``: the ``radient_async`` logger at DEBUG on stderr, keys masked."""
        if not self.settings.debug:
            yield
            return
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(_Redactor(self))
        previous = _LOG.level
        _LOG.addHandler(handler)
        _LOG.setLevel(logging.DEBUG)
        try:
            yield
        finally:
            _LOG.removeHandler(handler)
            _LOG.setLevel(previous)

    async def _with_session(self, work: Callable[[Session], Coroutine[Any, Any, T]]) -> T:
        async with self._session() as session:
            return await work(session)

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[Session]:
        """A session against the configured API, or against a fresh in-process local server."""
        settings = self.settings
        if not settings.local:
            async with Session(
                settings.api_key, settings.base_url, timeout=settings.timeout
            ) as session:
                yield session
            return
        server = server_module()
        key = "local-" + secrets.token_urlsafe(16)
        self._secrets.append(key)
        latency = settings.local_latency
        config = server.ServerConfig(api_key=key, latency=latency, latency_jitter=latency / 4)
        async with server.LocalServer(config) as local:
            _LOG.debug("local server at %s", local.base_url)
            async with Session(key, local.base_url, timeout=settings.timeout) as session:
                yield session


class _Redactor(logging.Filter):
    """Masks API keys in log records (the SDK never logs them; this is a second lock)."""

    def __init__(self, runner: Runner) -> None:
        super().__init__()
        self._runner = runner

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self._runner.redact(record.getMessage()), None
        return True


def server_module() -> Any:
    """``radient_async.server``, or a one-line error when it cannot be loaded (no Pillow)."""
    try:
        from radient_async import server
    except ImportError as exc:
        raise CliError(f"cannot load the local server: {exc}", EXIT_CONFIG) from None
    return server


def _silence_stdout() -> None:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def emit(line: str) -> None:
    """One line of results on stdout, flushed so that a pipe sees it at once."""
    print(line, flush=True)


def note(message: str) -> None:
    """A diagnostic line on stderr."""
    click.echo(message, err=True)


def stderr_console() -> Console:
    """A rich console on stderr that interprets no markup in what it is given."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)
