"""Rendering on demand: a bounded LRU of PNG bytes in front of the renderer.

An image is rendered when it is first requested (a download, or an ``inline`` answer), never at
generate. Images over 512×512 are rendered in a worker thread so the event loop keeps serving; a
second request for an image already being rendered there waits for that render instead of
starting its own.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from ._jobs import Job
from ._render import RenderKey, render_png
from ._stats import Stats

__all__ = ["ImageCache"]

_OFFLOAD_PIXELS = 512 * 512


class ImageCache:
    """PNG bytes by ``RenderKey``; at most ``max_bytes`` held (the last image is always kept)."""

    def __init__(self, stats: Stats, *, min_bytes: int = 0, max_bytes: int = 256 << 20) -> None:
        self._stats = stats
        self._min_bytes = min_bytes
        self._max_bytes = max_bytes
        self._cache: OrderedDict[RenderKey, bytes] = OrderedDict()
        self._held = 0
        self._rendering: dict[RenderKey, asyncio.Future[bytes]] = {}

    @property
    def held_bytes(self) -> int:
        """Bytes of PNG currently cached."""
        return self._held

    async def png(self, job: Job, index: int) -> bytes:
        """The PNG of image ``index`` of ``job``."""
        key = job.render_key(index)
        data = self._cache.get(key)
        if data is not None:
            self._cache.move_to_end(key)
            return data
        source = job.source.picture if job.source is not None else None
        if job.width * job.height <= _OFFLOAD_PIXELS:
            data = render_png(key, source, self._min_bytes)
        else:
            data = await self._render_in_thread(key, job)
        self._store(key, data)
        return data

    async def _render_in_thread(self, key: RenderKey, job: Job) -> bytes:
        while (pending := self._rendering.get(key)) is not None:
            await asyncio.wait([pending])
            if not pending.cancelled():
                return pending.result()
            # the render we waited for was abandoned: try again
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._rendering[key] = done
        source = job.source.picture if job.source is not None else None
        try:
            data = await asyncio.to_thread(render_png, key, source, self._min_bytes)
        except BaseException:
            done.cancel()
            raise
        finally:
            del self._rendering[key]
        done.set_result(data)
        return data

    def _store(self, key: RenderKey, data: bytes) -> None:
        if key in self._cache:
            return
        self._stats.images_rendered += 1
        self._cache[key] = data
        self._held += len(data)
        while self._held > self._max_bytes and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._held -= len(old)

    def forget(self, job: Job) -> None:
        """Drop the cached files of an expired job."""
        if not self._cache:
            return
        for index in range(job.num_images):
            data = self._cache.pop(job.render_key(index), None)
            if data is not None:
                self._held -= len(data)

    def clear(self) -> None:
        """Drop everything cached."""
        self._cache.clear()
        self._held = 0
