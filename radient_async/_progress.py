"""Batch progress: counters plus a small reporting protocol, with tqdm and rich adapters.

Off by default. ``progress=True`` picks tqdm (``tqdm.auto``, so notebooks get a widget) when it
is installed, else rich; ``"tqdm"``/``"rich"`` choose one; a callable receives ``BatchStats`` after
each change; any object with the ``ProgressSink`` methods is used as it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import attrs

__all__ = ["BatchStats", "ProgressSink", "ProgressSpec", "make_progress"]


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


class _Counter:
    """Keeps ``BatchStats`` and tells an optional listener after every change."""

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
    def __init__(self, total: int | None) -> None:
        from tqdm.auto import tqdm

        super().__init__()
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


def make_progress(spec: ProgressSpec, total: int | None = None) -> _Counter | ProgressSink:
    """The sink for a ``progress=`` argument (see the module docstring)."""
    if spec is None or spec is False:
        return _Counter()
    if spec is True or spec == "auto":
        try:
            return _TqdmSink(total)
        except ImportError:
            return _RichSink(total)
    if spec == "tqdm":
        return _TqdmSink(total)
    if spec == "rich":
        return _RichSink(total)
    if isinstance(spec, ProgressSink):
        return spec
    if callable(spec):
        return _Counter(spec)
    from ._errors import ValidationError

    raise ValidationError(
        "progress", f"expected True, 'tqdm', 'rich', a callable or a sink: {spec!r}"
    )
