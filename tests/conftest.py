"""Shared fixtures: every async test runs on asyncio through anyio's pytest plugin.

The local server and a session pointed at it come from the project's own pytest plugin,
``radient_async.testing`` (``radient_server``, ``radient_session``), so the plugin users get is the
one our suite exercises daily.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
