"""The README quickstart, runnable: ``python examples/quickstart.py --local`` needs no account.

Without ``--local`` it uses RADIENT_API_KEY and RADIENT_BASE_URL, exactly as the README does; with
it, an embedded local server stands in for the API.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator

import radient_async


@contextlib.asynccontextmanager
async def open_session(local: bool) -> AsyncIterator[radient_async.Session]:
    """A session against the real API, or against a local server started for the occasion."""
    if not local:
        # Key and base URL from arguments or RADIENT_API_KEY / RADIENT_BASE_URL.
        async with radient_async.Session() as session:
            yield session
        return
    from radient_async.server import LocalServer, ServerConfig

    async with (
        LocalServer(ServerConfig(api_key="local-key", latency=0.3)) as server,
        radient_async.Session("local-key", server.base_url) as session,
    ):
        yield session


async def main(local: bool, output: str) -> list[str]:
    async with open_session(local) as session:
        job = await session.submit(
            "a lighthouse at dusk", num_images=2, image_size="landscape_16_9"
        )
        result = await job  # polled concurrently in the background
        paths = await result.download(output)  # streamed, atomic, safely named
        print(paths)
    return paths


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--local", action="store_true", help="use an embedded local server")
    parser.add_argument("-o", "--output", default="out/", help="where to save the images")
    args = parser.parse_args()
    asyncio.run(main(args.local, args.output))
