"""Batch progress: the ``Tally`` of what a batch has done, and the displays that show it.

A ``Display`` shows progress and per-item messages on stderr and results on stdout: a live rich
bar on a terminal (``_LiveBar``, which prints lines above itself so they are never cut), a
periodic line for logs and pipes (``_Lines``), or messages only with ``--no-progress``
(``_Quiet``). ``make_display`` picks one; keeping them here leaves ``_batch`` with the batch.
"""

from __future__ import annotations

import io
import os
import sys
import time
from typing import TYPE_CHECKING, Protocol

import attrs

from radient_async._batch_items import BatchOutcome

from ._run import emit, note, stderr_console

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["Display", "Tally", "make_display"]


@attrs.define
class Tally:
    """What a batch has done so far, for the live display and the summary.

    ``running`` is the items taken up and not yet finished: never more than the concurrency, on
    a resumed run too (where re-attached and resubmitted jobs would count twice as submissions).
    """

    total: int
    taken: int = 0  # items the batch has taken from the input
    done: int = 0
    resumed: int = 0
    failed: int = 0
    images: int = 0
    kept: int = 0  # files already there, kept by --skip-existing
    nbytes: int = 0
    started: float = attrs.field(factory=time.monotonic)

    @property
    def running(self) -> int:
        return max(0, self.taken - self.finished)

    @property
    def finished(self) -> int:
        return self.done + self.failed

    @property
    def rate(self) -> float:
        """Items finished per second by this run (resumed ones cost nothing, so do not count)."""
        elapsed = time.monotonic() - self.started
        return (self.finished - self.resumed) / elapsed if elapsed > 0 else 0.0

    def record(self, outcome: BatchOutcome) -> None:
        if outcome.ok:
            self.done += 1
            self.resumed += outcome.resumed
            self.images += len(outcome.paths)
        else:
            self.failed += 1

    def parts(self) -> list[str]:
        """The counts, most important first."""
        parts = [f"{self.running} running", f"{self.done} done", f"{self.failed} failed"]
        if self.resumed:
            parts.append(f"{self.resumed} resumed")
        return [*parts, f"{self.images} images", f"{self.rate:.1f} jobs/s"]

    def line(self, width: int | None = None) -> str:
        """The counts that fit in ``width`` characters (all of them without a width)."""
        shown: list[str] = []
        for part in self.parts():
            if width is not None and len(" · ".join([*shown, part])) > width:
                break
            shown.append(part)
        return " · ".join(shown)

    def summary(self, output: str) -> str:
        resumed = f" ({self.resumed} resumed)" if self.resumed else ""
        kept = f", {self.kept} kept" if self.kept else ""
        elapsed = time.monotonic() - self.started
        return (
            f"done: {self.done} ok{resumed}, {self.failed} failed, {self.images} images in "
            f"{output}{kept} ({_size(self.nbytes)} downloaded, {self.rate:.1f} jobs/s, "
            f"{elapsed:.1f}s)"
        )


def _size(nbytes: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} B"


class Display(Protocol):
    """Where batch progress and per-item messages are shown (stderr), and results (stdout)."""

    def refresh(self, tally: Tally) -> None: ...
    def message(self, text: str) -> None: ...
    def result(self, line: str) -> None: ...
    def stop(self) -> None: ...


class _Quiet:
    """``--no-progress``: messages only."""

    def refresh(self, tally: Tally) -> None:
        pass

    def message(self, text: str) -> None:
        note(text)

    def result(self, line: str) -> None:
        emit(line)

    def stop(self) -> None:
        pass


class _Lines(_Quiet):
    """For logs and pipes: one progress line every ``interval`` seconds."""

    def __init__(self, interval: float = 2.0) -> None:
        self._interval = interval
        self._next = time.monotonic() + interval

    def refresh(self, tally: Tally) -> None:
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self._interval
            note(f"radient: {tally.finished}/{tally.total} · {tally.line()}")


# The bar's width on a wide terminal, and on a narrow one (below _NARROW columns).
_BAR, _SHORT_BAR, _NARROW = 30, 10, 90


class _LiveBar:
    """For a terminal: a live rich progress bar on stderr, with lines printed above it.

    Every line (a failure, and a saved path when stdout is the same terminal) goes through the
    bar's console, which clears the bar, prints the line whole (the terminal wraps it, rich does
    not cut it) and draws the bar again below. Stdout that is not this terminal gets the paths
    as they are.
    """

    def __init__(self, console: Console, total: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self._console = console
        self._bar = _BAR if console.width >= _NARROW else _SHORT_BAR
        # Spinner, done/total, bar and elapsed time always show; the counts get what is left.
        self._fixed = 1 + len(f"{total}/{total}") + self._bar + len("0:00:00") + 4
        self._progress = Progress(
            SpinnerColumn(),
            MofNCompleteColumn(),
            BarColumn(bar_width=self._bar),
            TextColumn("{task.fields[detail]}", markup=False),
            TimeElapsedColumn(),
            console=console,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._to_console = _same_terminal()
        self._task = self._progress.add_task("batch", total=total, detail="starting")
        self._progress.start()

    def refresh(self, tally: Tally) -> None:
        detail = tally.line(width=max(0, self._console.width - self._fixed - 1))
        self._progress.update(self._task, completed=tally.finished, detail=detail)

    def message(self, text: str) -> None:
        self._print(text)

    def result(self, line: str) -> None:
        if self._to_console:
            self._print(line)
        else:
            emit(line)

    def _print(self, line: str) -> None:
        from rich.text import Text

        self._console.print(Text(line), soft_wrap=True)

    def stop(self) -> None:
        self._progress.stop()


def _same_terminal() -> bool:
    """Whether stdout is the terminal stderr shows the bar on."""
    try:
        out, err = sys.stdout.fileno(), sys.stderr.fileno()
        return os.isatty(out) and os.isatty(err) and os.path.samestat(os.fstat(out), os.fstat(err))
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False


def make_display(enabled: bool, total: int) -> Display:
    """A live bar on a terminal, periodic lines otherwise, messages only when not ``enabled``."""
    if not enabled:
        return _Quiet()
    console = stderr_console()
    return _LiveBar(console, total) if console.is_terminal else _Lines()
