"""``radient providers``, ``status`` and ``download`` against a local server in the test's loop."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner

from radient_async import Session
from radient_async.cli import cli
from radient_async.server import LocalServer, ServerConfig

pytestmark = pytest.mark.anyio

KEY = "jobs-cli-key"


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    async with LocalServer(ServerConfig(api_key=KEY, latency=0.05)) as local:
        yield local


async def invoke(server: LocalServer, *args: str) -> tuple[int, str, str]:
    """Run the command in a worker thread: it has its own event loop, the server runs in ours."""
    env = {"RADIENT_API_KEY": KEY, "RADIENT_BASE_URL": server.base_url}

    def run() -> tuple[int, str, str]:
        result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    return await anyio.to_thread.run_sync(run)


async def test_providers_as_lines_and_as_json(server: LocalServer) -> None:
    assert await invoke(server, "providers") == (0, "default\nsketch\ninline\n", "")
    code, stdout, _ = await invoke(server, "providers", "--json")
    assert (code, json.loads(stdout)) == (0, {"providers": ["default", "sketch", "inline"]})


async def test_status_then_download_of_an_earlier_job(server: LocalServer, tmp_path: Path) -> None:
    code, stdout, _ = await invoke(
        server, "--json", "generate", "later", "--size", "16x16", "-o", str(tmp_path / "a")
    )
    assert code == 0
    request_id = json.loads(stdout)["request_id"]
    assert await invoke(server, "status", request_id) == (0, f"{request_id}: COMPLETED\n", "")
    code, stdout, _ = await invoke(server, "status", request_id, "--json")
    info = json.loads(stdout)
    assert (info["status"], info["provider"], len(info["urls"])) == ("COMPLETED", "default", 1)
    code, stdout, _ = await invoke(server, "download", request_id, "-o", str(tmp_path / "b"))
    assert code == 0
    assert stdout == f"{tmp_path / 'b' / request_id}_0.png\n"
    assert Path(stdout.strip()).read_bytes() == next((tmp_path / "a").iterdir()).read_bytes()


async def test_download_waits_for_a_job_still_running(server: LocalServer, tmp_path: Path) -> None:
    server.controls.set_latency(0.6)
    async with Session(KEY, server.base_url) as session:
        job = await session.submit("slow", image_size=(16, 16))
    code, stdout, _ = await invoke(server, "status", job.request_id)
    assert (code, stdout) == (0, f"{job.request_id}: PROCESSING\n")
    code, stdout, _ = await invoke(server, "download", job.request_id, "-o", str(tmp_path))
    assert code == 0
    assert Path(stdout.strip()).name == f"{job.request_id}_0.png"


async def test_status_of_a_failed_job_is_reported_not_raised(
    server: LocalServer, tmp_path: Path
) -> None:
    code, stdout, stderr = await invoke(server, "generate", "a [fail]", "-o", str(tmp_path))
    assert code == 5
    request_id = stderr.split("job ")[-1].split()[0]
    code, stdout, _ = await invoke(server, "status", request_id)
    assert code == 0
    assert stdout.startswith(f"{request_id}: FAILED (")
    code, stdout, stderr = await invoke(server, "download", request_id, "-o", str(tmp_path))
    assert (code, stdout) == (5, "")
    assert stderr.startswith(f"error: job {request_id} failed")


async def test_unknown_jobs_exit_4(server: LocalServer, tmp_path: Path) -> None:
    unknown = "imgreq_" + "f" * 24
    for args in (["status", unknown], ["download", unknown, "-o", str(tmp_path)]):
        code, stdout, stderr = await invoke(server, *args)
        assert (code, stdout) == (4, "")
        assert stderr.startswith("error: ")
        assert unknown in stderr


async def test_a_second_download_names_the_file_and_overwrite_replaces_it(
    server: LocalServer, tmp_path: Path
) -> None:
    code, stdout, _ = await invoke(
        server, "--json", "generate", "twice", "--size", "16x16", "-o", str(tmp_path / "a")
    )
    assert code == 0
    request_id = json.loads(stdout)["request_id"]
    out = tmp_path / "b"
    assert (await invoke(server, "download", request_id, "-o", str(out)))[0] == 0
    code, _, stderr = await invoke(server, "download", request_id, "-o", str(out))
    assert code != 0
    assert f"{out / request_id}_0.png already exists" in stderr  # the file, not a temp file
    assert ".part" not in stderr
    code, stdout, _ = await invoke(server, "download", request_id, "--overwrite", "-o", str(out))
    assert code == 0
    assert stdout == f"{out / request_id}_0.png\n"
    assert sorted(p.name for p in out.iterdir()) == [f"{request_id}_0.png"]


async def test_download_into_something_that_is_not_a_folder_is_refused(
    server: LocalServer, tmp_path: Path
) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    code, _, stderr = await invoke(server, "download", "imgreq_x", "-o", str(blocker / "sub"))
    assert code == 2
    assert stderr.startswith("error: ")
    assert "--output" in stderr
