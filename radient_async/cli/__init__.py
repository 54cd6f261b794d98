"""The ``radient`` command: generate, batch, status, download, providers, serve.

Results go to stdout (saved paths, or JSON with ``--json``); progress, diagnostics and errors go to
stderr, an error as one line ``error: <message>`` (``--debug`` adds DEBUG logs of the
``radient_async`` logger and tracebacks; the API key is never printed). ``--local`` runs everything
against the embedded local server, so no account is needed.

Exit codes: 0 ok · 1 unexpected error (a local file, or a bug) · 2 usage or validation error ·
3 configuration or authentication error · 4 API or connection error · 5 a job failed (in a batch:
any item failed) · 130 interrupted (Ctrl-C).

``_run`` runs a command (settings, the event loop, errors and exit codes), ``_batch`` drives
a batch and its progress, ``_gallery`` writes the HTML gallery, ``_commands`` holds the commands.
"""

from __future__ import annotations

from ._commands import cli, main
from ._gallery import gallery_page, write_gallery
from ._run import (
    EXIT_API,
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_OTHER,
    EXIT_USAGE,
)

__all__ = [
    "EXIT_API",
    "EXIT_CONFIG",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_OTHER",
    "EXIT_USAGE",
    "cli",
    "gallery_page",
    "main",
    "write_gallery",
]
