"""Every Python block in README.md runs as written, against the embedded local server.

Whole programs run as scripts in a fresh process (with ``RADIENT_API_KEY``/``RADIENT_BASE_URL``
pointing at a local server, in a scratch folder); the "more of the API" fragment, which the README
says runs inside an ``async`` function with ``session`` open, runs in exactly that harness.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image as PILImage

from radient_async.server import ServerConfig, ThreadedServer

README = Path(__file__).resolve().parents[1] / "README.md"
KEY = "sk-readme-5c0d"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)

HARNESS = """
import asyncio
import radient_async


async def main() -> None:
    prompt = "a fox"
    prompts = ["a fox", "an owl"]
    async with radient_async.Session() as session:
{body}


asyncio.run(main())
"""


def test_the_readme_has_the_blocks_this_test_knows() -> None:
    assert len(BLOCKS) == 4


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedServer]:
    with ThreadedServer(ServerConfig(api_key=KEY, latency=0.05)) as running:
        yield running


def run(code: str, server: ThreadedServer, folder: Path) -> str:
    env = {**os.environ, "RADIENT_API_KEY": KEY, "RADIENT_BASE_URL": server.base_url}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize("number", [0, 1])
def test_a_whole_program_block_runs_as_written(
    number: int, server: ThreadedServer, tmp_path: Path
) -> None:
    printed = run(BLOCKS[number], server, tmp_path)
    saved = sorted((tmp_path / "out").iterdir())
    assert saved
    assert all(str(path.name) in printed for path in saved)


def test_the_api_fragment_runs_inside_a_session(server: ThreadedServer, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    PILImage.new("RGB", (64, 64), (200, 30, 30)).save(buffer, format="JPEG")
    (tmp_path / "photo.jpg").write_bytes(buffer.getvalue())
    # the one placeholder in it: re-attach to the job submitted just above
    body = textwrap.indent(BLOCKS[2].replace('"imgreq_…"', "job.request_id"), " " * 8)
    printed = run(HARNESS.format(body=body), server, tmp_path)
    assert "JobStatus.COMPLETED" in printed or "COMPLETED" in printed
    assert len(list((tmp_path / "out").iterdir())) == 2
    assert (tmp_path / "batch.jsonl").exists()


def test_the_web_backend_block_serves_images(server: ThreadedServer, tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    code = BLOCKS[3] + textwrap.dedent(
        """

        import asyncio

        async def check() -> None:
            async with lifespan(app):
                print(await create_image("a lighthouse"))

        asyncio.run(check())
        """
    )
    assert "'urls': ['http" in run(code, server, tmp_path)
