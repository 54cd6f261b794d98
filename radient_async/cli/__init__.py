"""The ``radient`` command: generate, batch, status, download, providers, serve.

Results go to stdout (saved paths, or JSON with ``--json``); progress, diagnostics and errors go to
stderr, an error as one line ``error: <message>`` (``--debug`` adds DEBUG logs of the
``radient_async`` logger and tracebacks; the API key is never printed). ``--local`` runs everything
against the embedded local server, so no account is needed.

Exit codes: 0 ok · 1 unexpected error (a local file, or a bug) · 2 usage or validation error ·
3 configuration or authentication error (also: the ``cli`` extra is not installed) · 4 API or
connection error · 5 a job failed (in a batch: any item failed) · 130 interrupted (Ctrl-C).

``_run`` runs a command (settings, the event loop, errors and exit codes), ``_options`` checks
and names the options, ``_batch`` drives a batch, ``_terminal`` counts and shows its progress,
``_saving`` saves images (overwrite or skip-existing), ``_gallery`` writes the HTML gallery,
``_commands`` holds the group with ``generate`` and ``batch``, ``_jobs`` the status, download
and providers commands, ``_serve`` the serve command. This module imports none of them eagerly:
``main`` works, and says what to install, without click and rich (the ``cli`` extra).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._commands import cli
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

EXTRAS_HINT = "pip install 'radient-async[cli]'"
_LAZY = {
    "cli": "._commands",
    "gallery_page": "._gallery",
    "write_gallery": "._gallery",
    **{name: "._run" for name in __all__ if name.startswith("EXIT_")},
}
_EXIT_CONFIG = 3  # the same as _run.EXIT_CONFIG, which needs click to import


def main(argv: Sequence[str] | None = None) -> int:
    """The ``radient`` console script: run the command, return its exit code.

    Without the ``cli`` extra (click, rich) it prints one line saying what to install.
    """
    try:
        import click  # noqa: F401
        import rich  # noqa: F401

        from ._commands import main as run
    except ImportError as exc:
        if exc.name not in ("click", "rich") and not str(exc.name or "").startswith(
            ("click.", "rich.")
        ):
            raise
        print(
            f"error: the radient command needs the cli extra ({exc.name} is not installed): "
            f"{EXTRAS_HINT}",
            file=sys.stderr,
        )
        return _EXIT_CONFIG
    return run(argv)


def __getattr__(name: str) -> Any:
    """``cli``, the exit codes and the gallery helpers, imported on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module, __name__), name)
