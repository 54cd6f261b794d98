"""Saving a job's images with ``--overwrite`` or ``--skip-existing``.

Images are saved as ``<request_id>_<index><ext>``, the extension being the type the bytes show.
By default a file already there is an error (it is never silently replaced); ``--overwrite``
replaces it; ``--skip-existing`` keeps it (any extension) and reports it as the image's path.
A job's files are already there when it is downloaded again, or when a batch item with its own
``idempotency_key`` is run again and the server answers with the job it made before.
"""

from __future__ import annotations

import enum
import glob
import os
from collections.abc import Callable
from typing import Any

import anyio.to_thread
import click

from radient_async._models import GenerationResult, Image

__all__ = ["Existing", "existing_file", "existing_options", "save_result"]


class Existing(enum.Enum):
    """What to do with a file already there."""

    FAIL = "fail"
    OVERWRITE = "overwrite"
    SKIP = "skip"

    @classmethod
    def from_flags(cls, overwrite: bool, skip_existing: bool) -> Existing:
        if overwrite and skip_existing:
            raise click.UsageError("give --overwrite or --skip-existing, not both")
        return cls.OVERWRITE if overwrite else cls.SKIP if skip_existing else cls.FAIL


def existing_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--overwrite`` and ``--skip-existing``."""
    func = click.option(
        "--skip-existing",
        is_flag=True,
        help="Keep image files already there (reported on stderr) instead of failing.",
    )(func)
    return click.option("--overwrite", is_flag=True, help="Replace image files already there.")(
        func
    )


def existing_file(folder: str, image: Image) -> str | None:
    """The file ``image`` was saved as in ``folder`` earlier (whatever its extension), if any."""
    stem = os.path.splitext(image.filename)[0]
    pattern = os.path.join(glob.escape(folder), glob.escape(stem) + ".*")
    found = sorted(path for path in glob.glob(pattern) if os.path.isfile(path))
    return found[0] if found else None


async def save_result(
    result: GenerationResult, folder: str, existing: Existing
) -> tuple[list[str], list[str]]:
    """Save ``result``'s images into ``folder``: ``(paths in image order, the kept ones)``."""
    if existing is not Existing.SKIP:
        overwrite = existing is Existing.OVERWRITE
        return await result.download(folder, overwrite=overwrite), []
    found = await anyio.to_thread.run_sync(
        lambda: [existing_file(folder, image) for image in result.images]
    )
    if all(path is None for path in found):
        return await result.download(folder), []
    paths = list(found)
    for position, image in enumerate(result.images):  # few images: one at a time, errors as-is
        if paths[position] is None:
            paths[position] = await image.download(os.path.join(folder, ""))
    return [path or "" for path in paths], [path for path in found if path is not None]
