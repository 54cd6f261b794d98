"""The output folder is checked before anything is submitted: a bad one never costs a job."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

import radient_async as ra
from radient_async.cli import cli
from radient_async.server import ThreadedServer
from radient_async.testing import FAST_POLL

pytestmark = pytest.mark.anyio


def bad_folders(tmp_path: Path) -> dict[str, Path]:
    a_file = tmp_path / "file.txt"
    a_file.write_text("not a folder")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    return {"a file": a_file, "under a file": a_file / "sub", "read-only": locked / "out"}


@pytest.mark.parametrize("which", ["a file", "under a file", "read-only"])
async def test_map_refuses_a_bad_folder_before_submitting(
    radient_server: ThreadedServer, tmp_path: Path, which: str
) -> None:
    target = bad_folders(tmp_path)[which]
    if which == "read-only" and os.geteuid() == 0:
        pytest.skip("root may write anywhere")
    assert radient_server.api_key is not None
    async with ra.Session(radient_server.api_key, radient_server.base_url, poll=FAST_POLL) as s:
        with pytest.raises(ra.ValidationError, match="download_to"):
            async for _ in s.map(["x", "y"], download_to=target):
                pass
    assert radient_server.stats.jobs_created == 0
    assert sum(radient_server.stats.requests.values()) == 0


@pytest.mark.parametrize("which", ["under a file"])  # click itself refuses "a file"
def test_cli_generate_refuses_a_bad_folder_before_submitting(
    radient_server: ThreadedServer, tmp_path: Path, which: str
) -> None:
    target = bad_folders(tmp_path)[which]
    assert radient_server.api_key is not None
    env = {"RADIENT_API_KEY": radient_server.api_key, "RADIENT_BASE_URL": radient_server.base_url}
    result = CliRunner().invoke(cli, ["generate", "x", "-o", str(target)], env=env)
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith("error: ")
    assert "--output" in result.stderr
    assert radient_server.stats.jobs_created == 0


async def test_a_good_new_folder_is_made(radient_server: ThreadedServer, tmp_path: Path) -> None:
    assert radient_server.api_key is not None
    target = tmp_path / "new" / "deeper"
    async with ra.Session(radient_server.api_key, radient_server.base_url, poll=FAST_POLL) as s:
        outcomes = [o async for o in s.map(["x"], download_to=target, image_size=(16, 16))]
    assert outcomes[0].ok
    assert len(list(target.glob("*.png"))) == 1


async def test_result_download_checks_a_folder_once_and_a_later_bad_folder_still_fails_typed(
    radient_server: ThreadedServer, tmp_path: Path
) -> None:
    """The folder is checked on the first ``result.download`` into it; later calls skip that
    hop, and a folder that went bad since fails the save itself with a typed error, no file."""
    assert radient_server.api_key is not None
    folder = tmp_path / "out"
    async with ra.Session(radient_server.api_key, radient_server.base_url, poll=FAST_POLL) as s:
        result = await s.generate("x", image_size=(16, 16), sync_mode=True)
        [first] = await result.download(folder)
        folder_again = tmp_path / "out"  # the same spelling: the check is not repeated
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
        folder.write_text("a file now")
        with pytest.raises(ra.DownloadError, match="cannot write"):
            await result.download(folder_again)
        with pytest.raises(ra.ValidationError, match="directory"):  # a new spelling: checked
            await result.download(os.path.join(tmp_path, ".", "out"))
    assert folder.read_text() == "a file now"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert os.path.basename(first).endswith(".png")
