"""The CLI as a user meets it: a real terminal, one-line errors in CLI terms, hints, skip-existing.

The terminal tests run ``radient`` under a pseudo-terminal (stdout and stderr both on it, 60
columns, as in an interactive shell) and read back every byte it wrote.
"""

from __future__ import annotations

import io
import json
import os
import re
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner
from rich.console import Console

from radient_async import ImageSize, Session
from radient_async._batch_items import to_request
from radient_async._errors import DownloadError
from radient_async._keys import request_fingerprint
from radient_async._manifest import Manifest, ManifestEntry
from radient_async.cli import _commands as commands
from radient_async.cli import cli, main
from radient_async.cli._batch import BatchJob
from radient_async.cli._terminal import Tally, _LiveBar
from radient_async.server import LocalServer, ServerConfig, ThreadedServer

FAST = ["--local", "--local-latency", "0.02"]
KEY = "terminal-cli-key"
CONTROL = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])|\x1b\][^\x07]*\x07")
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def remote(server: ThreadedServer | LocalServer, key: str = KEY) -> dict[str, str]:
    return {"RADIENT_API_KEY": key, "RADIENT_BASE_URL": server.base_url}


class Screen:
    """Just enough of a terminal to read rich's output as a person sees it.

    Text wraps at the last column (a wrapped row is joined to the one before, like tmux's
    ``capture-pane -J``), ``\\r`` returns, ``\\n`` moves down, and the cursor moves and line
    erasures rich's live display uses are applied; colours and modes are ignored.
    """

    def __init__(self, columns: int) -> None:
        self.columns = columns
        self.rows: list[list[str]] = [[]]
        self.wrapped = [False]  # row i continues row i-1 (the terminal wrapped it)
        self.row = self.col = 0

    def feed(self, text: str) -> None:
        at = 0
        while at < len(text):
            control = CONTROL.match(text, at)
            if control:
                self._control(control.group(1) or "", control.group(2) or "")
                at = control.end()
                continue
            char, at = text[at], at + 1
            if char == "\r":
                self.col = 0
            elif char == "\n":
                self._down(wrapped=False)
            elif char >= " ":
                if self.col >= self.columns:
                    self._down(wrapped=True)
                line = self.rows[self.row]
                line.extend(" " * (self.col + 1 - len(line)))
                line[self.col] = char
                self.col += 1

    def _down(self, *, wrapped: bool) -> None:
        self.row, self.col = self.row + 1, 0
        if self.row == len(self.rows):
            self.rows.append([])
            self.wrapped.append(wrapped)

    def _control(self, params: str, final: str) -> None:
        count = int(params) if params.isdigit() else 1
        if final == "A":
            self.row = max(0, self.row - count)
        elif final == "K" and params == "2":
            self.rows[self.row] = []
        elif final == "K":
            del self.rows[self.row][self.col :]
        elif final == "G":
            self.col = count - 1

    def lines(self) -> list[str]:
        joined: list[str] = []
        for row, wrapped in zip(self.rows, self.wrapped, strict=True):
            text = "".join(row)
            if wrapped and joined:
                joined[-1] += text
            else:
                joined.append(text)
        lines = [line.rstrip() for line in joined]
        while lines and not lines[-1]:  # the cursor's row after the last newline
            lines.pop()
        return lines


def in_a_terminal(args: list[str], cwd: Path, columns: int = 60) -> tuple[int, list[str]]:
    """Run ``python -m radient_async.cli ARGS`` on a pty: its exit code and the screen's lines."""
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    env["TERM"] = "xterm-256color"
    process = subprocess.Popen(
        [sys.executable, "-m", "radient_async.cli", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=cwd,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:  # a safety net for a hung child, not a measurement
                process.kill()
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
        code = process.wait(timeout=60)
    screen = Screen(columns)
    screen.feed(b"".join(chunks).decode("utf-8", "replace"))
    return code, screen.lines()


# -- the live display ----------------------------------------------------------------------------


def test_batch_in_a_real_terminal_prints_whole_paths_above_a_bar_with_the_total(
    tmp_path: Path,
) -> None:
    prompts = tmp_path / "prompts.txt"
    lines = [f"prompt {i}" for i in range(40)]
    lines[17] = "prompt 17 [fail]"
    prompts.write_text("\n".join(lines) + "\n")
    out = tmp_path / "a_rather_long_output_folder_name" / "so_that_paths_are_wider_than_60"
    code, rows = in_a_terminal(
        ["--local", "--local-latency", "0.05", "batch", "prompts.txt", "-o", str(out),
         "--size", "16x16", "--concurrency", "4"],
        tmp_path,
    )  # fmt: skip
    assert code == 5, rows
    saved = sorted(out.glob("*.png"))
    assert len(saved) == 39
    for path in saved:
        assert len(str(path)) > 60  # wider than the terminal: the terminal wraps it, not rich
        assert str(path) in rows  # whole, alone on its line: not cut by, or mixed with, the bar
    failure = [row for row in rows if row.startswith("item 17 ('prompt 17 [fail]') failed: ")]
    assert len(failure) == 1
    assert failure[0].endswith("the prompt asked for it ([fail])")
    assert len(rows) == 39 + 1 + 2  # the paths, the failure, the bar's last state, the summary
    assert re.fullmatch(r"\s*40/40 ━+ 0 running · 39 done · 1 failed 0:00:\d\d", rows[-2])
    assert rows[-1].startswith("done: 39 ok, 1 failed, 39 images in ")


def test_json_lines_in_a_real_terminal_are_unchanged(tmp_path: Path) -> None:
    prompts = tmp_path / "p.txt"
    prompts.write_text(
        "".join(f"a rather long prompt that makes a wide json line {i}\n" for i in range(5))
    )
    code, rows = in_a_terminal(
        ["--local", "--local-latency", "0.02", "--json", "batch", "p.txt", "-o", "out",
         "--size", "16x16"],
        tmp_path,
    )  # fmt: skip
    assert code == 0, rows
    records = [json.loads(row) for row in rows if row.startswith("{")]
    assert sorted(r["index"] for r in records) == [0, 1, 2, 3, 4]
    assert set(records[0]) == {"index", "prompt", "ok", "request_id", "paths", "resumed", "error"}


def test_the_live_bar_prints_lines_above_itself_whole_on_a_narrow_terminal() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=40, highlight=False)
    bar = _LiveBar(console, total=40)
    tally = Tally(total=40, taken=12, done=3, resumed=2, failed=1, images=3)
    line = "item 17 ('prompt 17 [fail]') failed: job imgreq_0123456789abcdef01234567 failed"
    bar.refresh(tally)
    bar.message(line)
    bar.stop()
    screen = Screen(40)
    screen.feed(buffer.getvalue())
    rows = screen.lines()
    assert line in rows  # one line, not wrapped into the bar's width
    final = rows[-1]
    assert " 4/40 " in final  # the total shows, even at 40 columns
    assert len(final) <= 40
    assert "8 running" in final


@pytest.mark.anyio
async def test_a_resumed_run_counts_running_items_not_submissions(tmp_path: Path) -> None:
    """Re-attached jobs the server lost are submitted again: still at most 2 running."""
    items: list[str | dict[str, Any]] = [f"item {i}" for i in range(6)]
    manifest = tmp_path / "m.jsonl"
    book = await Manifest.open(manifest)
    size = {"image_size": ImageSize(16, 16)}
    for index in range(4):  # running when an earlier run stopped; its server is gone
        fingerprint = request_fingerprint(to_request(items[index], size))
        job_id = f"imgreq_{index:024d}"
        await book.record(ManifestEntry(index, fingerprint, job_id, "default", "submitted"))

    seen: list[int] = []

    class Recorder:
        def refresh(self, tally: Tally) -> None:
            seen.append(tally.running)

        def message(self, text: str) -> None:
            pass

        def result(self, line: str) -> None:
            pass

        def stop(self) -> None:
            pass

    tally = Tally(total=6)
    job = BatchJob(items, size, str(tmp_path / "o"), 2, str(manifest), False, Recorder(), tally)
    config = ServerConfig(api_key=KEY, latency=0.02)
    async with LocalServer(config) as server, Session(KEY, server.base_url) as session:
        await job.run(session)
    assert (tally.done, tally.failed, tally.running) == (6, 0, 0)
    assert max(seen) == 2


# -- validation: generate and batch alike, before anything is sent --------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-n", "0"], "error: -n/--num-images: must be between 1 and 8, got 0"),
        (["-n", "-1"], "error: -n/--num-images: must be between 1 and 8, got -1"),
        (["--size", "huge"], "error: --size: 'huge' is neither a size name"),
        (["--size", "10x10"], "error: --size: '10x10': each side must be 16 to 4096 pixels"),
        (["--size", "64x5000"], "error: --size: '64x5000': each side must be 16 to 4096 pixels"),
        (["--provider", " "], "error: --provider: must be a non-empty string"),
    ],
)
def test_generate_and_batch_refuse_the_same_values_the_same_way(
    tmp_path: Path, args: list[str], message: str
) -> None:
    prompts = tmp_path / "p.txt"
    prompts.write_text("one\ntwo\n")
    out = tmp_path / "out"
    with ThreadedServer(ServerConfig(api_key=KEY)) as server:
        gen = invoke("generate", "x", *args, "-o", str(out), env=remote(server))
        bat = invoke("batch", str(prompts), *args, "-o", str(out), env=remote(server))
        assert server.stats.jobs_created == 0
    for code, stdout, stderr in (gen, bat):
        assert (code, stdout) == (2, "")
        assert stderr.startswith(message)
        assert stderr.count("\n") == 1
    assert gen[2].split(" (see ")[0] == bat[2].split(" (see ")[0]


def test_files_a_batch_writes_are_checked_before_submitting(tmp_path: Path) -> None:
    prompts, blocker = tmp_path / "p.txt", tmp_path / "file.txt"
    prompts.write_text("one\n")
    blocker.write_text("x")
    with ThreadedServer(ServerConfig(api_key=KEY)) as server:
        for option in ("--gallery", "--manifest"):
            target = str(blocker / "sub" / "x.html")
            code, _, stderr = invoke(
                "batch", str(prompts), option, target, "-o", str(tmp_path / "o"), env=remote(server)
            )
            assert code == 2
            assert stderr.startswith(f"error: {option}: ")
        code, _, stderr = invoke("batch", str(prompts), "-o", str(blocker), env=remote(server))
        assert (code, stderr.startswith("error: -o/--output: ")) == (2, True)
        assert server.stats.jobs_created == 0


# -- usage errors: one line, in CLI terms ---------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["generate"], "missing argument 'PROMPT' (see 'radient generate --help')"),
        (["nosuch"], "no such command 'nosuch' (see 'radient --help')"),
        (["generate", "x", "--bogus"], "no such option '--bogus' (see 'radient generate --help')"),
        (
            ["generate", "x", "-n", "abc"],
            "-n/--num-images: 'abc' is not a valid integer (see 'radient generate --help')",
        ),
        (
            ["batch", "missing.txt"],
            "FILE: file 'missing.txt' does not exist (see 'radient batch --help')",
        ),
        (
            ["generate", "x", "--overwrite", "--skip-existing"],
            "give --overwrite or --skip-existing, not both (see 'radient generate --help')",
        ),
    ],
)
def test_usage_errors_are_one_line_on_stderr(
    args: list[str], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, stdout, stderr = invoke(*args)
    assert (code, stdout, stderr) == (2, "", f"error: {line}\n")
    assert main(args) == 2  # the console script says the same
    assert capsys.readouterr().err == f"error: {line}\n"


def test_messages_name_flags_and_variables_not_python_arguments(tmp_path: Path) -> None:
    code, _, stderr = invoke("providers", env={"RADIENT_API_KEY": "", "RADIENT_BASE_URL": ""})
    assert code == 3
    assert stderr == (
        "error: no API key (pass --api-key or set RADIENT_API_KEY, or use --local: no account "
        "needed)\n"
    )
    code, _, stderr = invoke("providers", "--api-key", "k", "--base-url", "http://example.com/v1")
    assert code == 3
    assert "allow_insecure_http" not in stderr
    assert "the API key over plain http to example.com (use an https:// --base-url;" in stderr


def test_a_base_url_without_v1_gets_a_hint() -> None:
    with ThreadedServer(ServerConfig(api_key=KEY)) as server:
        bare = server.base_url.removesuffix("/v1")
        code, _, stderr = invoke("providers", env={**remote(server), "RADIENT_BASE_URL": bare})
        assert code == 4
        assert stderr.startswith("error: HTTP 404")
        assert stderr.endswith(f"(hint: the base URL usually ends in /v1: --base-url {bare}/v1)\n")
        code, _, stderr = invoke("status", "imgreq_" + "f" * 24, env=remote(server))
        assert code == 4
        assert "hint" not in stderr  # with /v1, a 404 is just an unknown job


def test_without_the_cli_extra_radient_says_what_to_install() -> None:
    for module in ("click", "rich"):
        block = (
            f"import sys, runpy; sys.modules[{module!r}] = None; sys.argv = ['radient', '--help']; "
        )
        run_it = "runpy.run_module('radient_async.cli', run_name='__main__')"
        done = subprocess.run(
            [sys.executable, "-c", block + run_it], capture_output=True, text=True, check=False
        )
        assert done.returncode == 3
        assert done.stdout == ""
        assert done.stderr == (
            f"error: the radient command needs the cli extra ({module} is not installed): "
            "pip install 'radient-async[cli]'\n"
        )


def test_status_and_download_refuse_local_with_one_line(tmp_path: Path) -> None:
    for args in (["status", "imgreq_x"], ["download", "imgreq_x", "-o", str(tmp_path)]):
        code, stdout, stderr = invoke("--local", *args)
        assert (code, stdout) == (2, "")
        assert stderr.startswith("error: --local starts a new, empty server for each command")
        assert "radient serve" in stderr
        assert stderr.count("\n") == 1


def test_a_jsonl_typo_warns_once_naming_the_field_and_the_item_still_runs(tmp_path: Path) -> None:
    requests = tmp_path / "r.jsonl"
    requests.write_text(
        '{"prompt": "a", "nmu_images": 2}\n{"prompt": "b", "nmu_images": 2}\n'
        '{"prompt": "c", "lora_scale": 0.5}\n{"prompt": "d", "extra": {"lora_scale": 0.5}}\n'
    )
    code, stdout, stderr = invoke(*FAST, "batch", str(requests), "-o", str(tmp_path / "o"),
                                  "--size", "16x16", "--no-progress")  # fmt: skip
    assert code == 0, stderr
    assert len(stdout.splitlines()) == 4
    warnings = [line for line in stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2
    assert warnings[0].startswith(
        f"warning: {requests} line 1: unknown field 'nmu_images' (did you mean 'num_images'?)"
    )
    assert warnings[1].startswith(f"warning: {requests} line 3: unknown field 'lora_scale';")


# -- files already there: --overwrite, --skip-existing -------------------------------------------


def test_download_skip_existing_keeps_files_and_reports_them(tmp_path: Path) -> None:
    with ThreadedServer(ServerConfig(api_key=KEY)) as server:
        env = remote(server)
        code, stdout, _ = invoke("--json", "generate", "twice", "-n", "2", "--size", "16x16",
                                 "-o", str(tmp_path), env=env)  # fmt: skip
        assert code == 0
        first, second = json.loads(stdout)["paths"]
        Path(first).write_bytes(b"mine")
        request_id = json.loads(stdout)["request_id"]
        code, _, stderr = invoke("download", request_id, "-o", str(tmp_path), env=env)
        assert code == 4
        assert "already exists (--overwrite replaces it, --skip-existing keeps it)" in stderr
        assert "overwrite=True" not in stderr
        Path(second).unlink(missing_ok=True)
        code, stdout, stderr = invoke(
            "download", request_id, "--skip-existing", "-o", str(tmp_path), env=env
        )
    assert code == 0, stderr
    assert stdout.splitlines() == [first, second]
    assert stderr == f"kept {first} (already there)\n"
    assert Path(first).read_bytes() == b"mine"  # kept as it was
    assert Path(second).read_bytes().startswith(b"\x89PNG")  # the missing one saved


def test_batch_items_whose_files_are_there_fail_overwrite_or_are_kept(tmp_path: Path) -> None:
    """An item with its own idempotency_key, run again: the server answers with the same job."""
    requests = tmp_path / "r.jsonl"
    requests.write_text('{"prompt": "keyed", "idempotency_key": "item-1"}\n{"prompt": "fresh"}\n')
    out = tmp_path / "o"
    args = ["batch", str(requests), "-o", str(out), "--size", "16x16", "--no-progress"]
    with ThreadedServer(ServerConfig(api_key=KEY)) as server:
        env = remote(server)
        assert invoke(*args, env=env)[0] == 0
        code, _, again = invoke(*args, env=env)
        kept_code, kept_out, kept = invoke(*args, "--skip-existing", env=env)
        over_code, _, over = invoke(*args, "--overwrite", env=env)
    assert code == 5
    assert "item 0 ('keyed') failed: " in again
    assert "already exists (--overwrite replaces it, --skip-existing keeps it)" in again
    assert "; to save its images: radient download imgreq_" in again
    assert kept_code == 0, kept
    [kept_line] = [line for line in kept.splitlines() if line.startswith("kept ")]
    assert kept_line.endswith("_0.png (already there)")
    assert kept_line.split()[1] in kept_out.splitlines()
    assert "done: 2 ok, 0 failed, 2 images in " in kept
    assert ", 1 kept (" in kept
    assert over_code == 0, over
    assert len(list(out.glob("*.png"))) == 4 + 1  # "fresh" in each of 4 runs, "keyed" once


def test_generate_says_how_to_save_images_when_saving_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object) -> tuple[list[str], list[str]]:
        raise DownloadError("cannot write out/x.png: No space left on device")

    monkeypatch.setattr(commands, "save_result", broken)
    with ThreadedServer(ServerConfig(api_key=KEY)) as server:
        code, stdout, stderr = invoke("generate", "x", "-o", str(tmp_path), env=remote(server))
    assert (code, stdout) == (4, "")
    assert re.fullmatch(
        r"error: cannot write out/x.png: No space left on device; job (imgreq_\w+) is done: "
        r"save its images with radient download \1 -o DIR\n",
        stderr.splitlines(keepends=True)[-1],
    )


def test_a_short_test_key_does_not_garble_messages() -> None:
    code, _, stderr = invoke("providers", "--api-key", "k", "--base-url", "http://example.com/v1")
    assert code == 3
    assert "refusing to send the API key" in stderr  # not "API ***ey"


@pytest.mark.anyio
async def test_skip_existing_on_generate_saves_a_new_job_normally(tmp_path: Path) -> None:
    def run() -> tuple[int, str, str]:
        return invoke(*FAST, "generate", "x", "--skip-existing", "--size", "16x16",
                      "-o", str(tmp_path))  # fmt: skip

    code, stdout, stderr = await anyio.to_thread.run_sync(run)
    assert code == 0, stderr
    [path] = stdout.splitlines()
    assert Path(path).is_file()
    assert "kept" not in stderr
