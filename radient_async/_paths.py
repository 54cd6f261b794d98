"""Pure file-name rules and the blocking file steps of an atomic download.

The blocking functions here run in a worker thread (never on the event loop); the session's
downloader calls them through ``anyio.to_thread``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
from typing import BinaryIO

from ._errors import ValidationError

__all__ = [
    "check_output_folder",
    "commit_file",
    "discard_file",
    "open_temp_beside",
    "safe_filename",
]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
TEMP_SUFFIX = ".part"


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


def open_temp_beside(target: str) -> tuple[str, BinaryIO]:
    """Create a fresh hidden temporary file in the target's directory (same filesystem)."""
    directory, name = os.path.split(target)
    os.makedirs(directory or ".", exist_ok=True)
    while True:
        temp = os.path.join(directory, f".{name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:  # pragma: no cover - 32 random bits collided
            continue
        return temp, os.fdopen(fd, "wb")


def commit_file(
    temp: str, handle: BinaryIO, target: str, *, overwrite: bool, fsync: bool = False
) -> None:
    """Close the finished temp file and move it into place in one step.

    Without ``overwrite`` the move is a hard link, which fails atomically if the target exists, so
    an existing file is never silently replaced. ``fsync`` adds durability across power loss.
    """
    handle.flush()
    if fsync:
        os.fsync(handle.fileno())
    handle.close()
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
    """Close and remove an unfinished temp file; never raises."""
    try:
        handle.close()
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
