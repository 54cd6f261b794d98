"""Pure file-name rules and the blocking file steps of an atomic download.

The blocking functions here run in a worker thread (never on the event loop); the session's
downloader calls them through ``anyio.to_thread``.

Temporary files are named ``.<target name>.radient-<pid>-<16 hex>.part``. Where ``fcntl`` exists
(POSIX) the writer holds an exclusive ``flock`` on its open temp file from creation until the file
is linked into place or removed, so a leftover is told from a live file by whether its lock can be
taken: the first temp file a process opens in a folder first sweeps that folder (once per folder
per process) and removes every temp file of ours whose lock it can take without waiting — their
writers are gone. Without ``fcntl`` only temp files of ours older than a day are removed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
import threading
import time
from typing import BinaryIO

try:
    import fcntl

    _CAN_LOCK = True
except ImportError:  # pragma: no cover - not POSIX: stale temp files are judged by age
    _CAN_LOCK = False

from ._errors import ValidationError

__all__ = [
    "check_output_folder",
    "clean_stale_temp_files",
    "commit_file",
    "discard_file",
    "fsync_directory",
    "is_our_temp_name",
    "open_temp_beside",
    "output_folder_checked",
    "safe_filename",
]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
TEMP_SUFFIX = ".part"
_TEMP_NAME = re.compile(r"\..+\.radient-[0-9]{1,10}-[0-9a-f]{16}" + re.escape(TEMP_SUFFIX))
STALE_AFTER = 24 * 3600.0  # without fcntl: a temp file of ours this old has no live writer
_swept: set[tuple[int, str]] = set()  # (pid, folder) pairs already swept by this process
_checked: set[tuple[int, str]] = set()  # (pid, folder) pairs check_output_folder has passed
_REMEMBERED = 4096  # folders either set holds; past it, forget all (a re-check or re-sweep is safe)
_sweeping = threading.Lock()


def safe_filename(request_id: str, index: int, extension: str) -> str:
    """``<request_id>_<index><ext>`` with anything but ``[A-Za-z0-9_.-]`` replaced.

    Names never come from the image URL, so a hostile server cannot choose a path.
    """
    stem = _UNSAFE.sub("_", request_id).strip("._") or "image"
    ext = extension if re.fullmatch(r"\.[A-Za-z0-9]{1,8}", extension) else ".bin"
    return f"{stem[:120]}_{int(index)}{ext}"


def check_output_folder(path: str, field: str = "download_to") -> None:
    """Make sure ``path`` is, or can be made, a folder we may write in (blocking: a thread).

    Checked before anything is submitted, so a bad folder never costs a paid generation.
    """
    try:
        os.makedirs(path, exist_ok=True)
    except FileExistsError:
        raise ValidationError(field, f"{path} exists and is not a folder") from None
    except NotADirectoryError:
        raise ValidationError(field, f"{path} is inside something that is not a folder") from None
    except OSError as exc:
        raise ValidationError(field, f"cannot create {path}: {exc.strerror or exc}") from None
    if not os.path.isdir(path):
        raise ValidationError(field, f"{path} is not a folder")
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValidationError(field, f"cannot write in {path}")
    _remember(_checked, (os.getpid(), path))


def output_folder_checked(path: str) -> bool:
    """Whether this process has already passed ``path`` through ``check_output_folder``.

    A caller that saves into one folder again and again (``result.download("out/")`` per job)
    checks it once instead of paying a worker-thread hop each time; should the folder go bad
    later, the save itself fails with a typed ``DownloadError`` and leaves no file behind.
    """
    return (os.getpid(), path) in _checked


def _remember(folders: set[tuple[int, str]], *keys: tuple[int, str]) -> None:
    """Add ``keys``, first forgetting everything once the set is full, so a process that saves
    into millions of folders keeps a bounded set; forgetting only costs a repeated check."""
    if len(folders) >= _REMEMBERED:
        folders.clear()
    folders.update(keys)


def is_our_temp_name(name: str) -> bool:
    """Whether ``name`` is exactly the shape of a temp file name ``open_temp_beside`` makes."""
    return _TEMP_NAME.fullmatch(name) is not None


def open_temp_beside(target: str) -> tuple[str, BinaryIO]:
    """Create a fresh hidden temporary file in the target's directory (same filesystem).

    The file is locked (``flock``, where available) for as long as the returned handle is open;
    the first call for a folder in this process sweeps that folder's stale temp files first.
    """
    directory, name = os.path.split(target)
    _sweep_once(directory or ".")
    while True:
        token = secrets.token_hex(8)
        temp = os.path.join(directory, f".{name}.radient-{os.getpid()}-{token}{TEMP_SUFFIX}")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:  # pragma: no cover - 64 random bits collided
            continue
        except FileNotFoundError:  # the folder is made only when missing (~10 µs a file less)
            os.makedirs(directory or ".", exist_ok=True)
            continue
        if _lock_is_ours(fd, temp):
            return temp, os.fdopen(fd, "wb")
        os.close(fd)  # pragma: no cover - a sweeper removed it between create and lock


def _lock_is_ours(fd: int, temp: str) -> bool:
    """Lock the new temp file; False if a sweeper removed it before the lock was taken."""
    if not _CAN_LOCK:  # pragma: no cover - not POSIX
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits only for a sweeper holding it for a moment
    except OSError:  # pragma: no cover - no locks on this filesystem: sweeps cannot lock it either
        return True
    try:
        return os.path.samestat(os.stat(temp), os.fstat(fd))
    except FileNotFoundError:  # pragma: no cover - a sweeper removed it before we locked it
        return False


def _sweep_once(directory: str) -> None:
    """Sweep ``directory`` if no spelling of it was swept by this process yet.

    The folder as spelled is checked first, so a batch does not pay ``realpath`` (several
    ``lstat`` calls, 10-25 µs) on every file; both spellings are remembered.
    """
    pid = os.getpid()
    if (pid, directory) in _swept:
        return
    key = (pid, os.path.realpath(directory))
    with _sweeping:
        swept = key in _swept
        _remember(_swept, key, (pid, directory))
    if swept:
        return
    with contextlib.suppress(OSError):  # a sweep is housekeeping: it never fails a download
        clean_stale_temp_files(directory)


def clean_stale_temp_files(directory: str, *, now: float | None = None) -> list[str]:
    """Remove the temp files of ours in ``directory`` that no live writer holds (blocking).

    Only names of exactly our shape are considered. With ``fcntl`` a file is removed only while
    its lock is held by this sweeper (taken without waiting, so a live writer keeps its file);
    without it, only files older than ``STALE_AFTER``. Returns the paths removed.
    """
    removed: list[str] = []
    with os.scandir(directory) as entries:
        names = [e.name for e in entries if is_our_temp_name(e.name)]
    for name in names:
        path = os.path.join(directory, name)
        with contextlib.suppress(OSError):  # gone already, or not ours to touch
            if _remove_if_unlocked(path, time.time() if now is None else now):
                removed.append(path)
    return removed


def _remove_if_unlocked(path: str, now: float) -> bool:
    if not _CAN_LOCK:  # pragma: no cover - not POSIX
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or now - info.st_mtime < STALE_AFTER:
            return False
        os.unlink(path)
        return True
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # its writer is alive and still writing
        if not os.path.samestat(os.lstat(path), os.fstat(fd)):
            return False  # the name now belongs to another file
        os.unlink(path)  # while holding the lock: no writer can be using it
        return True
    finally:
        os.close(fd)


def fsync_directory(directory: str) -> None:
    """Make a rename in ``directory`` durable (where directories can be opened; blocking)."""
    try:
        fd = os.open(directory or ".", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # pragma: no cover - e.g. Windows cannot open a directory
        return
    try:
        with contextlib.suppress(OSError):  # some filesystems refuse fsync on a directory
            os.fsync(fd)
    finally:
        os.close(fd)


def commit_file(
    temp: str, handle: BinaryIO, target: str, *, overwrite: bool, fsync: bool = False
) -> None:
    """Move the finished temp file into place in one step, then close it.

    Without ``overwrite`` the move is a hard link, which fails atomically if the target exists, so
    an existing file is never silently replaced. ``fsync`` adds durability across power loss.
    Where the temp file is locked, it stays open (and locked) until its name is gone, so a sweep
    never takes a file that is being moved into place.
    """
    handle.flush()
    if fsync:
        os.fsync(handle.fileno())
    if not _CAN_LOCK:  # pragma: no cover - not POSIX: an open file cannot be renamed there
        handle.close()
    try:
        _move_into_place(temp, target, overwrite=overwrite)
    finally:
        handle.close()


def _move_into_place(temp: str, target: str, *, overwrite: bool) -> None:
    if overwrite:
        os.replace(temp, target)
        return
    try:
        os.link(temp, target)
    except FileExistsError:
        os.unlink(temp)
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), target) from None
    except OSError:  # no hard links on this filesystem: check, then rename
        if os.path.exists(target):
            os.unlink(temp)
            raise FileExistsError(target) from None
        os.replace(temp, target)
        return
    os.unlink(temp)


def discard_file(temp: str, handle: BinaryIO) -> None:
    """Remove an unfinished temp file (still holding its lock), then close it; never raises."""
    try:
        if not _CAN_LOCK:  # pragma: no cover - not POSIX: an open file cannot be removed there
            handle.close()
        with contextlib.suppress(OSError):
            os.unlink(temp)
    finally:
        handle.close()
