"""Resumable batches: a JSON-lines manifest of what each batch item became.

Every line records one item's progress (its input fingerprint, request id, status, files). Running
the same batch again reads the manifest and skips completed items, re-attaches to submitted ones by
request id, and submits the rest with an idempotency key derived from the batch id, the item and its
attempt — so even a crash between submitting and recording cannot create a second job for an item:
the server answers the repeated key with the job it already has. Appends are group-committed with
fsync; a torn last line (a crash mid-write) is dropped on open — by writing the good lines to a
temporary file beside the manifest, fsyncing it, renaming it over the manifest and fsyncing the
folder, so a crash during the repair leaves the old manifest or the repaired one, never less.

A completed entry records its files, their sizes and the folder they were saved in, so a rerun can
check them before trusting them (``unusable_files``). The last entry for an item is the one that
holds.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import uuid
from typing import Any

import anyio
import anyio.to_thread
import attrs

from ._errors import ValidationError
from ._keys import derive_idempotency_key
from ._paths import commit_file, discard_file, fsync_directory, open_temp_beside

__all__ = ["Manifest", "ManifestEntry", "ManifestMismatchError", "unusable_files"]

_FORMAT = "radient-batch-manifest/1"


class ManifestMismatchError(ValidationError):
    """The manifest was written for different inputs than this run's."""

    def __init__(self, message: str) -> None:
        super().__init__("manifest", message)


@attrs.frozen
class ManifestEntry:
    """One recorded step of one item."""

    index: int
    fingerprint: str
    request_id: str | None
    provider: str | None
    status: str  # "submitted" | "completed" | "failed" | "unfinished"
    files: tuple[str, ...] = ()
    error: str | None = None
    sizes: tuple[int, ...] = ()  # one per file; empty in manifests written before sizes were
    folder: str | None = None  # the resolved ``download_to`` the files were saved in

    @property
    def finished(self) -> bool:
        """True when the item produced its images; a rerun skips it."""
        return self.status == "completed"

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "index": self.index,
            "fp": self.fingerprint,
            "request_id": self.request_id,
            "provider": self.provider,
            "status": self.status,
        }
        if self.files:
            data["files"] = list(self.files)
        if self.error:
            data["error"] = self.error
        if self.sizes:
            data["sizes"] = list(self.sizes)
        if self.folder is not None:
            data["folder"] = self.folder
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ManifestEntry:
        return cls(
            int(data["index"]),
            str(data["fp"]),
            data.get("request_id"),
            data.get("provider"),
            str(data["status"]),
            tuple(str(name) for name in data.get("files") or ()),
            data.get("error"),
            _sizes_of(data.get("sizes")),
            None if data.get("folder") is None else str(data["folder"]),
        )


class Manifest:
    """An open manifest file: lookups from memory, appends durable on disk."""

    def __init__(
        self, path: str, batch_id: str, entries: dict[int, ManifestEntry], failures: dict[int, int]
    ) -> None:
        self.path = path
        self.batch_id = batch_id
        self._entries = entries
        self._failures = failures
        self._pending: list[str] = []
        self._queued = 0
        self._written = 0
        self._lock = anyio.Lock()

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> Manifest:
        """Load ``path`` if it exists (dropping a torn last line), else start a new manifest."""
        text_path = os.fspath(path)
        return await anyio.to_thread.run_sync(cls._load, text_path)

    @classmethod
    def _load(cls, path: str) -> Manifest:
        entries: dict[int, ManifestEntry] = {}
        failures: dict[int, int] = {}
        batch_id = None
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            data = b""
        except IsADirectoryError:
            raise ValidationError("manifest", f"{path} is a folder, not a manifest file") from None
        good = data[: data.rfind(b"\n") + 1]  # a torn last line has no newline yet
        for number, raw in enumerate(good.splitlines()):
            try:
                record = json.loads(raw)
                if number == 0:
                    if record.get("format") != _FORMAT:
                        raise ManifestMismatchError(f"{path} is not a radient batch manifest")
                    batch_id = str(record["batch_id"])
                    continue
                entry = ManifestEntry.from_json(record)
            except (ValueError, KeyError, TypeError, AttributeError):
                raise ManifestMismatchError(f"{path} line {number + 1} is corrupt") from None
            if entry.status == "failed":
                failures[entry.index] = failures.get(entry.index, 0) + 1
            # The last entry holds: a rerun that found a completed item's files missing re-records
            # it. An entry without a fingerprint keeps the one recorded before it.
            previous = entries.get(entry.index)
            entries[entry.index] = (
                entry
                if entry.fingerprint
                else attrs.evolve(entry, fingerprint=previous.fingerprint if previous else "")
            )
        if batch_id is None:
            batch_id = uuid.uuid4().hex
            header = json.dumps({"format": _FORMAT, "batch_id": batch_id}) + "\n"
            good = header.encode()
        if len(good) != len(data) or not data:
            _replace_durably(path, good)
        return cls(path, batch_id, entries, failures)

    def lookup(self, index: int, fingerprint: str) -> ManifestEntry | None:
        """The latest entry for item ``index``; refuses an item whose input changed."""
        entry = self._entries.get(index)
        if entry is None:
            return None
        if entry.fingerprint and entry.fingerprint != fingerprint:
            raise ManifestMismatchError(
                f"item {index} differs from the one recorded in {self.path}; "
                "use a new manifest for different inputs"
            )
        if entry.status == "failed":
            return None  # failed items are tried again, with a fresh idempotency key
        return entry

    def idempotency_key(self, index: int, fingerprint: str) -> str:
        """The same key for the same item and attempt, across runs of this batch."""
        attempt = self._failures.get(index, 0)
        return derive_idempotency_key(self.batch_id, index, fingerprint, attempt)

    async def record(self, entry: ManifestEntry) -> None:
        """Append ``entry`` and return once it is on disk (group commit with other writers)."""
        self._entries[entry.index] = entry
        if entry.status == "failed":
            self._failures[entry.index] = self._failures.get(entry.index, 0) + 1
        self._pending.append(entry.to_json() + "\n")
        self._queued += 1
        mine = self._queued
        async with self._lock:
            if self._written >= mine:
                return
            lines, self._pending = self._pending, []
            await anyio.to_thread.run_sync(self._append, "".join(lines))
            self._written += len(lines)

    def _append(self, text: str) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())


def unusable_files(entry: ManifestEntry, download_to: str) -> str | None:
    """Why ``entry``'s files are not usable as this run's output in ``download_to``, or None.

    Each recorded file must resolve (symlinks and ``..`` followed) to a regular, non-empty file
    directly in the resolved ``download_to``, of its recorded size when one was recorded; the
    entry must have been saved into that same folder. Blocking: runs in a worker thread.
    """
    folder = os.path.realpath(download_to)
    if entry.folder is not None and os.path.realpath(entry.folder) != folder:
        return f"its files were saved in {entry.folder}, not in {download_to}"
    if not entry.files:
        return f"no files were saved in {download_to}"
    if entry.sizes and len(entry.sizes) != len(entry.files):
        return "its recorded sizes do not match its files"
    for position, name in enumerate(entry.files):
        real = os.path.realpath(name)
        if os.path.dirname(real) != folder:
            return f"{name} is not in {download_to}"
        try:
            info = os.stat(real)
        except OSError:
            return f"{name} is missing"
        if not stat.S_ISREG(info.st_mode) or info.st_size == 0:
            return f"{name} is empty or not a file"
        if entry.sizes and info.st_size != entry.sizes[position]:
            return f"{name} has {info.st_size} bytes, not the {entry.sizes[position]} saved"
    return None


def _sizes_of(value: object) -> tuple[int, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(
        isinstance(size, int) and not isinstance(size, bool) and size >= 0 for size in value
    ):
        raise ValueError("sizes must be a list of byte counts")
    return tuple(value)


def _replace_durably(path: str, data: bytes) -> None:
    """Put ``data`` at ``path`` atomically: write beside, fsync, rename over, fsync the folder.

    The manifest is never rewritten in place: until the rename, ``path`` holds what it held.
    A manifest reached through a symlink is replaced at the symlink's target.
    """
    target = os.path.realpath(path)
    temp, handle = open_temp_beside(target)
    try:
        handle.write(data)
        with contextlib.suppress(FileNotFoundError):  # keep the manifest's permissions
            os.chmod(temp, stat.S_IMODE(os.stat(target).st_mode))
        commit_file(temp, handle, target, overwrite=True, fsync=True)  # fsync, then os.replace
    except BaseException:
        discard_file(temp, handle)
        raise
    fsync_directory(os.path.dirname(target))
