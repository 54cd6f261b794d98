"""``radient serve``: a real process, the URL and key it prints, and a clean stop on a signal."""

from __future__ import annotations

import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from radient_async.cli import cli

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

# Python ignores SIGINT in a child started from a shell's background job; restore the default.
RUN = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from radient_async.cli import main; sys.exit(main(sys.argv[1:]))"
)


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def read_until(process: subprocess.Popen[str], marker: str, timeout: float = 15) -> list[str]:
    """Lines of the process's stdout up to the one starting with ``marker``."""
    assert process.stdout is not None
    stdout = process.stdout
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while not (seen and seen[-1].startswith(marker)):
        try:
            seen.append(lines.get(timeout=max(0.0, deadline - time.monotonic())).rstrip("\n"))
        except queue.Empty:
            raise AssertionError(f"no {marker!r} line; got {seen}") from None
    return seen


@pytest.fixture
def start() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes started by a test; any still running at the end are killed."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def serve(started: list[subprocess.Popen[str]], *args: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", RUN, "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    started.append(process)
    return process


def stop(process: subprocess.Popen[str], signum: int) -> tuple[int, str]:
    """Send ``signum``; the exit code and what the process wrote to stderr."""
    assert process.stderr is not None
    process.send_signal(signum)
    code = process.wait(timeout=15)
    return code, process.stderr.read()


def exports(line: str) -> dict[str, str]:
    match = re.fullmatch(r"export RADIENT_BASE_URL=(\S+)(?: RADIENT_API_KEY=(\S+))?", line)
    assert match, line
    return {"RADIENT_BASE_URL": match[1], "RADIENT_API_KEY": match[2] or ""}


def test_prints_a_generated_key_and_stops_on_ctrl_c(
    start: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    process = serve(start, "--latency", "0.01")
    first, export = read_until(process, "export ")
    env = exports(export)
    assert first == f"Radient local server at {env['RADIENT_BASE_URL']} (Ctrl-C stops it)"
    assert env["RADIENT_API_KEY"].startswith("local-")
    assert invoke("providers", env=env)[:2] == (0, "default\nsketch\ninline\n")
    code, stdout, _ = invoke("generate", "served", "--size", "16x16", "-o", str(tmp_path), env=env)
    assert code == 0
    assert Path(stdout.strip()).is_file()
    assert invoke("providers", env={**env, "RADIENT_API_KEY": "wrong"})[0] == 3
    assert stop(process, signal.SIGINT) == (0, "stopped\n")


def test_no_auth_and_sigterm(start: list[subprocess.Popen[str]]) -> None:
    process = serve(start, "--no-auth")
    env = exports(read_until(process, "export ")[-1])
    assert env["RADIENT_API_KEY"] == "any"
    assert invoke("providers", env={**env, "RADIENT_API_KEY": "whatever"})[0] == 0
    assert stop(process, signal.SIGTERM) == (0, "stopped\n")


def test_a_chosen_key_is_not_echoed_and_images_get_their_own_origin(
    start: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    process = serve(start, "--api-key", "my-own-key", "--separate-image-origin", "--poll-hint")
    lines = read_until(process, "export ")
    assert lines[1].startswith("images served from http://127.0.0.1:")
    env = exports(lines[-1])
    assert env["RADIENT_API_KEY"] == ""  # the key chosen is not echoed
    assert "my-own-key" not in "\n".join(lines)
    env["RADIENT_API_KEY"] = "my-own-key"
    code, stdout, _ = invoke(
        "--json", "generate", "cdn", "--size", "16x16", "-o", str(tmp_path), env=env
    )
    assert code == 0
    assert lines[1].split()[-1] in stdout  # the image URL is on the second origin
    assert stop(process, signal.SIGINT)[0] == 0


def test_a_taken_port_exits_3() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        code, stdout, stderr = invoke("serve", "--port", port)
    assert code == 3
    assert stdout == ""
    assert stderr.startswith(f"error: cannot serve on 127.0.0.1:{port}: ")


def test_bad_values_are_usage_errors() -> None:
    assert invoke("serve", "--latency", "-1")[0] == 2
    assert invoke("serve", "--fault-rate", "1.5")[0] == 2
    assert invoke("serve", "--port", "70000")[0] == 2
