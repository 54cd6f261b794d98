"""Batch progress: counters plus a small reporting protocol, with tqdm, rich and notebook adapters.

Off by default. ``progress=True`` (or ``"auto"``) picks a bar for the host it runs in:

========================================  ============================================
host (``detect_host()``)                  bar
========================================  ============================================
terminal, script, IPython console         tqdm's text bar when tqdm is installed, else rich
Jupyter kernel with ipywidgets            tqdm's notebook widget (what ``tqdm.auto`` picks)
Jupyter kernel without ipywidgets         one text line, updated in place (a display handle)
========================================  ============================================

``"tqdm"`` asks for tqdm: its widget in a Jupyter kernel with ipywidgets, else its text bar (never
``tqdm.auto``'s ``IProgress not found`` warning). ``"rich"`` asks for rich. A callable receives
``BatchStats`` after each change; any object with the ``ProgressSink`` methods is used as it is.

Detection is one small function, ``detect_host``; ``make_progress`` takes another in its place, so
the choice (``choose_backend``, pure) is tested for every host without a kernel.
"""

from __future__ import annotations

import enum
import importlib.util
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import attrs

__all__ = [
    "Backend",
    "BatchStats",
    "Host",
    "LineDisplay",
    "ProgressSink",
    "ProgressSpec",
    "choose_backend",
    "detect_host",
    "make_progress",
    "render_line",
]


@attrs.define
class BatchStats:
    """Counts for one batch; ``running`` = submitted and not yet finished."""

    submitted: int = 0
    completed: int = 0
    failed: int = 0
    images: int = 0
    bytes: int = 0
    started: float = attrs.field(factory=time.monotonic)

    @property
    def running(self) -> int:
        return max(0, self.submitted - self.completed - self.failed)

    @property
    def finished(self) -> int:
        return self.completed + self.failed

    @property
    def rate(self) -> float:
        """Finished items per second so far."""
        elapsed = time.monotonic() - self.started
        return self.finished / elapsed if elapsed > 0 else 0.0

    def summary(self) -> str:
        return (
            f"{self.completed} done, {self.failed} failed, {self.running} running, "
            f"{self.images} images, {self.bytes / 1e6:.1f} MB, {self.rate:.1f} jobs/s"
        )


@runtime_checkable
class ProgressSink(Protocol):
    """What a batch reports as it goes."""

    def submitted(self) -> None: ...
    def completed(self) -> None: ...
    def failed(self) -> None: ...
    def downloaded(self, images: int, nbytes: int) -> None: ...
    def close(self) -> None: ...


ProgressSpec = None | bool | str | ProgressSink | Callable[[BatchStats], Any]


@attrs.frozen
class Host:
    """Where a bar would be drawn: in a Jupyter kernel or not, and whether ipywidgets imports."""

    notebook: bool = False
    widgets: bool = False


class Backend(enum.Enum):
    """The bars ``make_progress`` can draw."""

    TQDM = "tqdm"  # tqdm's text bar
    TQDM_NOTEBOOK = "tqdm.notebook"  # tqdm's ipywidgets bar
    RICH = "rich"
    LINE = "line"  # one text line in a notebook output, replaced on each change


def detect_host() -> Host:
    """This process's host, as ``tqdm.auto`` judges it: a kernel is an IPython with IPKernelApp.

    IPython is never imported here: a process that has not imported it is not a kernel.
    """
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    shell = get_ipython() if callable(get_ipython) else None
    if shell is None:
        return Host()
    kernel = "IPKernelApp" in getattr(shell, "config", {}) or (
        type(shell).__name__ == "ZMQInteractiveShell"
    )
    if not kernel:
        return Host()
    return Host(notebook=True, widgets=importlib.util.find_spec("ipywidgets") is not None)


def choose_backend(spec: str | bool, host: Host) -> Backend:
    """The bar for ``progress=spec`` (``True``, ``"auto"``, ``"tqdm"`` or ``"rich"``) on ``host``.

    ``True``/``"auto"`` on a terminal is ``TQDM``; ``make_progress`` falls back to rich when tqdm
    is not installed (and, in a notebook, from tqdm's widget to the text line).
    """
    if spec == "rich":
        return Backend.RICH
    if host.notebook and host.widgets:
        return Backend.TQDM_NOTEBOOK
    if host.notebook and spec != "tqdm":
        return Backend.LINE
    return Backend.TQDM


class _Counter:
    """Keeps ``BatchStats`` and tells an optional listener after every change."""

    backend: Backend | None = None

    def __init__(self, listener: Callable[[BatchStats], Any] | None = None) -> None:
        self.stats = BatchStats()
        self._listener = listener

    def _changed(self) -> None:
        if self._listener is not None:
            self._listener(self.stats)

    def submitted(self) -> None:
        self.stats.submitted += 1
        self._changed()

    def completed(self) -> None:
        self.stats.completed += 1
        self._changed()

    def failed(self) -> None:
        self.stats.failed += 1
        self._changed()

    def downloaded(self, images: int, nbytes: int) -> None:
        self.stats.images += images
        self.stats.bytes += nbytes
        self._changed()

    def close(self) -> None:
        pass


class _TqdmSink(_Counter):
    def __init__(self, total: int | None, *, notebook: bool = False) -> None:
        if notebook:
            from tqdm.notebook import tqdm
        else:
            from tqdm.std import tqdm  # what tqdm.auto is outside a kernel

        super().__init__()
        self.backend: Backend | None = Backend.TQDM_NOTEBOOK if notebook else Backend.TQDM
        self._bar = tqdm(total=total, unit="job", desc="radient", dynamic_ncols=True)

    def _changed(self) -> None:
        stats = self.stats
        self._bar.n = stats.finished
        self._bar.set_postfix(
            running=stats.running, failed=stats.failed, images=stats.images, refresh=False
        )
        self._bar.refresh()

    def close(self) -> None:
        self._bar.close()


class _RichSink(_Counter):
    backend = Backend.RICH

    def __init__(self, total: int | None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        super().__init__()
        self._progress = Progress(
            TextColumn("[bold]radient"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            transient=False,
            console=Console(stderr=True),
        )
        self._task = self._progress.add_task("batch", total=total, detail="")
        self._progress.start()

    def _changed(self) -> None:
        stats = self.stats
        detail = f"running {stats.running} · failed {stats.failed} · images {stats.images}"
        self._progress.update(self._task, completed=stats.finished, detail=detail)

    def close(self) -> None:
        self._progress.stop()


class LineDisplay(Protocol):
    """One output area whose text is replaced: IPython's ``DisplayHandle`` in a notebook."""

    def update(self, text: str) -> None: ...
    def close(self) -> None: ...


class _StreamLine:
    """A line on a stream, rewritten after a carriage return; ended with a newline on close."""

    def __init__(self, stream: Any = None) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._width = 0

    def update(self, text: str) -> None:
        self._stream.write("\r" + text.ljust(self._width))
        self._stream.flush()
        self._width = max(self._width, len(text))

    def close(self) -> None:
        self._stream.write("\n")
        self._stream.flush()


class _IPythonLine:
    """A notebook output holding one line of text, replaced in place by ``update``."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def update(self, text: str) -> None:
        self._handle.update({"text/plain": text}, raw=True)

    def close(self) -> None:
        pass


def _notebook_line() -> LineDisplay:
    """A display handle in the running kernel's current cell; a stream line if there is none."""
    from IPython.display import display

    handle = display(  # type: ignore[no-untyped-call,unused-ignore]
        {"text/plain": ""}, raw=True, display_id=True
    )
    return _StreamLine() if handle is None else _IPythonLine(handle)


def render_line(stats: BatchStats, total: int | None, width: int = 24) -> str:
    """The text bar: ``radient  7/12 |██████████░░░░░░| running 3 · failed 0 · images 7``."""
    detail = f"running {stats.running} · failed {stats.failed} · images {stats.images}"
    if not total:
        return f"radient  {stats.finished} done · {detail}"
    filled = min(width, width * stats.finished // total)
    bar = "█" * filled + "░" * (width - filled)
    return f"radient  {stats.finished}/{total} |{bar}| {detail}"


class _LineSink(_Counter):
    """One line of text in a notebook, rewritten at most ten times a second and when done."""

    backend = Backend.LINE
    interval = 0.1

    def __init__(self, total: int | None, display: LineDisplay | None = None) -> None:
        super().__init__()
        self._total = total
        self._display = display if display is not None else _notebook_line()
        self._shown = float("-inf")
        self._display.update(render_line(self.stats, total))

    def _changed(self) -> None:
        now = time.monotonic()
        done = self._total is not None and self.stats.finished >= self._total
        if done or now - self._shown >= self.interval:
            self._shown = now
            self._display.update(render_line(self.stats, self._total))

    def close(self) -> None:
        self._display.update(render_line(self.stats, self._total))
        self._display.close()


def _sink_for(backend: Backend, total: int | None) -> _Counter:
    if backend is Backend.RICH:
        return _RichSink(total)
    if backend is Backend.LINE:
        return _LineSink(total)
    return _TqdmSink(total, notebook=backend is Backend.TQDM_NOTEBOOK)


def make_progress(
    spec: ProgressSpec, total: int | None = None, *, detect: Callable[[], Host] = detect_host
) -> _Counter | ProgressSink:
    """The sink for a ``progress=`` argument (see the module docstring).

    ``detect`` says where the bar is drawn; tests pass their own to stand for a notebook.
    """
    if spec is None or spec is False:
        return _Counter()
    if spec is True or spec in ("auto", "tqdm", "rich"):
        backend = choose_backend(spec, detect())
        try:
            return _sink_for(backend, total)
        except ImportError:  # tqdm is not installed: the auto choice falls back
            if spec not in (True, "auto") or backend in (Backend.RICH, Backend.LINE):
                raise
            notebook = backend is Backend.TQDM_NOTEBOOK
            return _sink_for(Backend.LINE if notebook else Backend.RICH, total)
    if isinstance(spec, ProgressSink):
        return spec
    if callable(spec):
        return _Counter(spec)
    from ._errors import ValidationError

    raise ValidationError(
        "progress", f"expected True, 'tqdm', 'rich', a callable or a sink: {spec!r}"
    )
