"""``radient batch``: items from a file, ``session.map`` with live progress, outcomes as they come.

The input is read and every item checked before anything is submitted. Progress is counted by a
small ``ProgressSink`` (submissions, bytes) plus the outcomes themselves, and shown as a live rich
bar on a terminal or as a periodic line in logs. With a manifest, a rerun continues where the last
run stopped; jobs the server no longer knows (expired, or started on an earlier ``--local`` server)
are submitted again in a second pass.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import AsyncGenerator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import attrs

from radient_async._batch import BatchOutcome, to_request
from radient_async._errors import RadientError

from ._run import EXIT_USAGE, STOP_AUTH, CliError, emit, note, stderr_console

if TYPE_CHECKING:
    from rich.console import Console

    from radient_async._session import Session

__all__ = ["BatchInput", "BatchJob", "Tally", "load_items", "make_display", "prompt_of"]

BatchInput = str | dict[str, Any]


def load_items(path: str, defaults: Mapping[str, Any]) -> list[BatchInput]:
    """Prompts (one per line) or JSONL request objects from ``path``, each checked up front.

    JSONL is recognised by a ``.jsonl`` name or a first character ``{``. Blank lines and lines
    starting with ``#`` are skipped. A bad line stops everything before any job is submitted.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}", EXIT_USAGE) from None
    as_jsonl = path.lower().endswith(".jsonl") or text.lstrip().startswith("{")
    items: list[BatchInput] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        item = _json_item(stripped, path, number) if as_jsonl else stripped
        try:
            to_request(item, defaults)
        except RadientError as exc:
            raise CliError(f"{path} line {number}: {exc}", EXIT_USAGE) from None
        items.append(item)
    if not items:
        raise CliError(f"{path} holds no prompts (one per line; # starts a comment)", EXIT_USAGE)
    return items


def _json_item(line: str, path: str, number: int) -> dict[str, Any]:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        raise CliError(f"{path} line {number}: not JSON ({exc.msg})", EXIT_USAGE) from None
    if not isinstance(item, dict):
        raise CliError(f"{path} line {number}: expected a JSON object", EXIT_USAGE)
    return item


def prompt_of(item: object) -> str:
    """The prompt of a batch item (a prompt string or a request mapping)."""
    if isinstance(item, str):
        return item
    if isinstance(item, Mapping):
        return str(item.get("prompt", ""))
    return str(getattr(item, "prompt", ""))


@attrs.define
class Tally:
    """What a batch has done so far, for the live display and the summary."""

    total: int
    submitted: int = 0
    settled: int = 0  # submitted items that have an outcome
    done: int = 0
    resumed: int = 0
    failed: int = 0
    images: int = 0
    nbytes: int = 0
    started: float = attrs.field(factory=time.monotonic)

    @property
    def running(self) -> int:
        return max(0, self.submitted - self.settled)

    @property
    def finished(self) -> int:
        return self.done + self.failed

    @property
    def rate(self) -> float:
        """Items finished per second by this run (resumed ones cost nothing, so do not count)."""
        elapsed = time.monotonic() - self.started
        return (self.finished - self.resumed) / elapsed if elapsed > 0 else 0.0

    def record(self, outcome: BatchOutcome) -> None:
        if outcome.request_id is not None and not outcome.resumed:
            self.settled += 1
        if outcome.ok:
            self.done += 1
            self.resumed += outcome.resumed
            self.images += len(outcome.paths)
        else:
            self.failed += 1

    def line(self) -> str:
        return (
            f"submitted {self.submitted} · running {self.running} · done {self.done} · "
            f"failed {self.failed} · {self.images} images · {self.rate:.1f} jobs/s"
        )

    def summary(self, output: str) -> str:
        resumed = f" ({self.resumed} resumed)" if self.resumed else ""
        elapsed = time.monotonic() - self.started
        return (
            f"done: {self.done} ok{resumed}, {self.failed} failed, {self.images} images in "
            f"{output} ({_size(self.nbytes)} downloaded, {self.rate:.1f} jobs/s, {elapsed:.1f}s)"
        )


def _size(nbytes: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} B"


class Display(Protocol):
    """Where batch progress and per-item messages are shown (stderr)."""

    def refresh(self, tally: Tally) -> None: ...
    def message(self, text: str) -> None: ...
    def stop(self) -> None: ...


class _Quiet:
    """``--no-progress``: messages only."""

    def refresh(self, tally: Tally) -> None:
        pass

    def message(self, text: str) -> None:
        note(text)

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


class _LiveBar:
    """For a terminal: a live rich progress bar on stderr, messages printed above it."""

    def __init__(self, console: Console, total: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]radient"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}", markup=False),
            TimeElapsedColumn(),
            console=console,
            # Results printed to the same terminal go above the bar; piped stdout is left alone.
            redirect_stdout=sys.stdout.isatty(),
            redirect_stderr=False,
        )
        self._task = self._progress.add_task("batch", total=total, detail="starting")
        self._progress.start()

    def refresh(self, tally: Tally) -> None:
        self._progress.update(self._task, completed=tally.finished, detail=tally.line())

    def message(self, text: str) -> None:
        from rich.text import Text

        self._progress.console.print(Text(text))

    def stop(self) -> None:
        self._progress.stop()


def make_display(enabled: bool, total: int) -> Display:
    """A live bar on a terminal, periodic lines otherwise, messages only when not ``enabled``."""
    if not enabled:
        return _Quiet()
    console = stderr_console()
    return _LiveBar(console, total) if console.is_terminal else _Lines()


class _Sink:
    """The SDK ``ProgressSink``: counts submissions and bytes; outcomes are counted on receipt.

    Counting outcomes where they are received, rather than in ``completed``/``failed``, keeps the
    tally right in the second pass, which sees (and skips) every item again.
    """

    def __init__(self, tally: Tally, display: Display) -> None:
        self._tally, self._display = tally, display

    def submitted(self) -> None:
        self._tally.submitted += 1
        self._display.refresh(self._tally)

    def completed(self) -> None:
        pass

    def failed(self) -> None:
        pass

    def downloaded(self, images: int, nbytes: int) -> None:
        self._tally.nbytes += nbytes

    def close(self) -> None:
        pass


@attrs.define
class BatchJob:
    """One ``radient batch`` run: its inputs and options, its tally, the images for a gallery."""

    items: list[BatchInput]
    defaults: Mapping[str, Any]
    output: str
    concurrency: int | None
    manifest: str | None
    as_json: bool
    display: Display
    tally: Tally
    gallery: list[tuple[int, str, tuple[str, ...]]] | None = None

    async def run(self, session: Session) -> None:
        """Check the key and connection once, then run every item.

        With a manifest, an item interrupted while running is re-attached by its request id; if
        the server no longer knows that job (it expired, or ``--local`` started a new server)
        ``session.map`` submits it again and marks the outcome ``resubmitted``.
        """
        await session.providers()  # a wrong key or an unreachable API fails here, and only here
        outcomes = session.map(
            self.items,
            download_to=self.output,
            concurrency=self.concurrency,
            manifest=self.manifest,
            progress=_Sink(self.tally, self.display),
            **self.defaults,
        )
        resubmitted = 0
        # ``map`` is an async generator: closing it on the way out cancels its outstanding work.
        stream = cast(AsyncGenerator[BatchOutcome, None], outcomes)
        async with contextlib.aclosing(stream):
            async for outcome in stream:
                resubmitted += outcome.resubmitted
                self.report(outcome)
        if resubmitted:
            self.display.message(
                f"{resubmitted} unfinished jobs are unknown to the server: submitted again"
            )

    def report(self, outcome: BatchOutcome) -> None:
        """Count, print and keep one outcome; an authentication failure ends the batch."""
        self.tally.record(outcome)
        self.display.refresh(self.tally)
        prompt = prompt_of(outcome.item)
        if self.as_json:
            emit(json.dumps(outcome_json(outcome, prompt)))
        elif outcome.ok:
            for path in outcome.paths:
                emit(path)
        if outcome.error is not None:
            if isinstance(outcome.error, STOP_AUTH):
                raise outcome.error
            self.display.message(f"item {outcome.index} ({_short(prompt)}) failed: {outcome.error}")
        elif self.gallery is not None:
            self.gallery.append((outcome.index, prompt, outcome.paths))

    def gallery_entries(self) -> list[tuple[str, tuple[str, ...]]]:
        """``(prompt, paths)`` of every successful item, in input order."""
        return [(prompt, paths) for _, prompt, paths in sorted(self.gallery or ())]


def outcome_json(outcome: BatchOutcome, prompt: str) -> dict[str, Any]:
    """One ``--json`` line for an outcome."""
    return {
        "index": outcome.index,
        "prompt": prompt,
        "ok": outcome.ok,
        "request_id": outcome.request_id,
        "paths": list(outcome.paths),
        "resumed": outcome.resumed,
        "error": None if outcome.error is None else str(outcome.error),
    }


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")
