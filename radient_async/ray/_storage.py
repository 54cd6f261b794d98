"""Where results go: a local (or NFS) folder or, through fsspec, object storage, written atomically.

Every file is written under a temporary name and then moved to its final name, so a reader (or a
resumed run) never sees half a file. These calls block; the mapper runs them in worker threads.
"""

from __future__ import annotations

import json
import posixpath
import secrets
from collections.abc import Mapping
from typing import Any

import fsspec

__all__ = ["Target", "open_target"]


class Target:
    """One folder on one filesystem (``fs``: an fsspec filesystem; ``root``: its path there)."""

    def __init__(self, fs: Any, root: str, url: str) -> None:
        self.fs = fs
        self.root = root.rstrip("/") or "/"
        self.url = url.rstrip("/")

    @property
    def is_local(self) -> bool:
        """True for the local filesystem (a path, NFS mount or ``file://`` URL)."""
        protocol = self.fs.protocol
        protocols = (protocol,) if isinstance(protocol, str) else tuple(protocol)
        return "file" in protocols or "local" in protocols

    def path(self, *parts: str) -> str:
        """A path under the root, as this filesystem spells it."""
        return posixpath.join(self.root, *parts)

    def url_of(self, *parts: str) -> str:
        """A path under the root, as the URL the caller gave (what Ray and pyarrow are given)."""
        return "/".join((self.url, *parts))

    def put_atomic(self, path: str, data: bytes) -> None:
        """Write ``data`` to ``path``: a temporary name first, then a move onto the final name."""
        self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
        temporary = f"{path}.tmp-{secrets.token_hex(6)}"
        try:
            with self.fs.open(temporary, "wb") as file:
                file.write(data)
            self.fs.mv(temporary, path)
        except BaseException:
            if self.fs.exists(temporary):
                self.fs.rm(temporary)
            raise

    def read_json(self, path: str) -> Any:
        """The JSON document at ``path``, or None when there is none."""
        if not self.fs.exists(path):
            return None
        with self.fs.open(path, "rb") as file:
            return json.loads(file.read())

    def write_json(self, path: str, value: Any) -> None:
        """Write ``value`` as JSON, atomically."""
        self.put_atomic(path, json.dumps(value, indent=2, sort_keys=True).encode() + b"\n")

    def parquet_files(self, *parts: str) -> list[str]:
        """Every ``.parquet`` file under a folder, sorted (none when it does not exist)."""
        folder = self.path(*parts)
        if not self.fs.exists(folder):
            return []
        return sorted(name for name in self.fs.find(folder) if name.endswith(".parquet"))


def open_target(url: str, storage_options: Mapping[str, Any] | None = None) -> Target:
    """The filesystem and root for ``url`` (a path or any fsspec URL: ``s3://bucket/run``)."""
    fs, root = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    return Target(fs, root, url)
