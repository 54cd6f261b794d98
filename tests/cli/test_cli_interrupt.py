"""Ctrl-C during ``radient batch --local``: exit 130, no partial file, and a rerun that resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

# Python ignores SIGINT in a child started from a shell's background job; restore the default.
RUN = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from radient_async.cli import main; sys.exit(main(sys.argv[1:]))"
)
COUNT = 200


def completed(manifest: Path) -> dict[int, tuple[str, list[str]]]:
    """Item index -> (request id, files) for every item the manifest records as completed."""
    done = {}
    for line in manifest.read_text().splitlines()[1:]:
        record = json.loads(line)
        if record["status"] == "completed":
            done[record["index"]] = (record["request_id"], record["files"])
    return done


def test_ctrl_c_exits_130_leaves_no_partial_file_and_the_rerun_resumes(tmp_path: Path) -> None:
    prompts, out, manifest = tmp_path / "prompts.txt", tmp_path / "out", tmp_path / "batch.jsonl"
    prompts.write_text("".join(f"a study of light, number {i}\n" for i in range(COUNT)))
    command = [sys.executable, "-c", RUN, "batch", "--local", str(prompts), "-o", str(out)]
    command += ["--manifest", str(manifest), "--size", "32x32", "--json"]

    first = subprocess.Popen(
        [*command, "--local-latency", "0.5", "--concurrency", "16"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(list(out.glob("*.png"))) < 16:
        time.sleep(0.02)
    first.send_signal(signal.SIGINT)
    stdout, stderr = first.communicate(timeout=20)
    assert first.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1].startswith("interrupted; rerun the same command")
    assert "Traceback" not in stderr
    assert not [name for name in os.listdir(out) if name.endswith(".part")]
    before = completed(manifest)
    assert 5 <= len(before) < COUNT
    printed = {json.loads(line)["index"] for line in stdout.splitlines()}
    assert printed <= set(before)  # every item reported as done is recorded as done
    mtimes = {name: os.stat(out / name).st_mtime_ns for name in os.listdir(out)}

    rerun = subprocess.run(
        [*command, "--local-latency", "0.01", "--concurrency", "200"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert rerun.returncode == 0, rerun.stderr
    outcomes = {r["index"]: r for r in map(json.loads, rerun.stdout.splitlines())}
    assert sorted(outcomes) == list(range(COUNT))
    assert all(r["ok"] for r in outcomes.values())
    after = completed(manifest)
    assert sorted(after) == list(range(COUNT))
    for index, (request_id, files) in before.items():  # nothing finished was generated again
        assert outcomes[index]["resumed"] is True
        assert outcomes[index]["request_id"] == request_id == after[index][0]
        for file in files:
            assert os.stat(file).st_mtime_ns == mtimes[Path(file).name]
    assert sum(not r["resumed"] for r in outcomes.values()) == COUNT - len(before)
    assert all(Path(file).is_file() for _, files in after.values() for file in files)
    assert f"done: {COUNT} ok ({len(before)} resumed), 0 failed" in rerun.stderr
