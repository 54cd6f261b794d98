"""Files and manifests (issue #11): stale temp files, atomic manifest repair, verified resumes.

Every batch here runs over real loopback HTTP against the local server; ``stats.jobs_created``
counts generations, so "re-downloaded, never regenerated" is asserted where the jobs are made.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import radient_async as ra
from radient_async import _paths as paths
from radient_async._manifest import Manifest
from radient_async._paths import (
    check_output_folder,
    clean_stale_temp_files,
    discard_file,
    is_our_temp_name,
    open_temp_beside,
    output_folder_checked,
)
from radient_async.server import ServerConfig, ThreadedServer
from radient_async.testing import FAST_POLL

pytestmark = pytest.mark.anyio

KEY = "files-key"
TINY = (32, 32)
fcntl = pytest.importorskip("fcntl")  # the lock-based rule is the POSIX one


@pytest.fixture
def radient_server_config() -> ServerConfig:
    return ServerConfig(api_key=KEY, seed=11)


def open_session(server: ThreadedServer) -> ra.Session:
    retry = ra.RetryPolicy(initial_backoff=0.01, max_backoff=0.05, max_retries=6)
    return ra.Session(KEY, server.base_url, poll=FAST_POLL, retry=retry)


async def run_batch(
    server: ThreadedServer, prompts: list[str], manifest: Path, out: Path
) -> list[ra.BatchOutcome]:
    async with open_session(server) as session:
        return [
            o
            async for o in session.map(
                prompts, manifest=manifest, download_to=out, image_size=TINY, ordered=True
            )
        ]


def records(manifest: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in manifest.read_text().splitlines()[1:]]


# -- 1. stale .part files ------------------------------------------------------------------------


def leftover(folder: Path, pid: int = 999_999) -> Path:
    """A temp file of ours whose writer is gone: our exact name shape, nobody holding its lock."""
    path = folder / f".req-old_0.png.radient-{pid}-0123456789abcdef.part"
    path.write_bytes(b"\x89PNG half an image")
    return path


_LIVE_WRITER = """
import fcntl, os, sys
name = f".req-live_0.png.radient-{os.getpid()}-fedcba9876543210.part"
fd = os.open(os.path.join(sys.argv[1], name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, b"being written")
print(name, flush=True)
sys.stdin.read()  # writing until the test lets it go
"""


@pytest.fixture
def live_writer(tmp_path: Path) -> Iterator[Path]:
    """A temp file of ours held open and locked by another live process (a writer mid-write)."""
    folder = tmp_path / "out"
    folder.mkdir()
    writer = subprocess.Popen(
        [sys.executable, "-c", _LIVE_WRITER, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None
    assert writer.stdin is not None
    try:
        name = writer.stdout.readline().strip()
        assert is_our_temp_name(name)
        yield folder / name
    finally:
        writer.stdin.close()
        writer.wait(timeout=10)
        writer.stdout.close()


def test_our_temp_names_are_recognised_exactly(tmp_path: Path) -> None:
    temp, handle = open_temp_beside(str(tmp_path / "img_0.png"))
    try:
        assert is_our_temp_name(os.path.basename(temp))
        assert f".radient-{os.getpid()}-" in temp
    finally:
        handle.close()
        os.unlink(temp)
    for name in ["x.part", ".x.part", "foo.png", ".a.png.radient-12-0123.part", "a.png.part"]:
        assert not is_our_temp_name(name), name


async def test_a_dead_writers_part_file_is_removed_when_a_download_into_the_folder_starts(
    radient_server: ThreadedServer, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    stale = leftover(out)
    stale_same_pid = leftover(out, pid=os.getpid())  # e.g. a container restart reusing the pid
    not_ours = [out / "x.part", out / ".x.part", out / "foo.png", out / ".foo.png.1234abcd.part"]
    for path in not_ours:
        path.write_bytes(b"someone else's")
    async with open_session(radient_server) as session:
        [outcome] = [o async for o in session.map(["one"], download_to=out, image_size=TINY)]
    assert outcome.ok, outcome.error
    assert not stale.exists()
    assert not stale_same_pid.exists()
    assert all(path.read_bytes() == b"someone else's" for path in not_ours)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [os.path.basename(outcome.paths[0])] + [p.name for p in not_ours]
    )


async def test_a_part_file_locked_by_a_live_process_is_left_alone(
    radient_server: ThreadedServer, live_writer: Path
) -> None:
    out = live_writer.parent
    stale = leftover(out)
    async with open_session(radient_server) as session:
        [outcome] = [o async for o in session.map(["two"], download_to=out, image_size=TINY)]
    assert outcome.ok, outcome.error
    assert not stale.exists()
    assert live_writer.read_bytes() == b"being written"  # its writer is alive: untouched


def test_a_part_file_being_written_by_another_thread_is_left_alone(tmp_path: Path) -> None:
    """Our own writers hold the lock too: a sweep in this process never takes their files."""
    temp, handle = open_temp_beside(str(tmp_path / "img_0.png"))
    seen: list[list[str]] = []
    sweeper = threading.Thread(target=lambda: seen.append(clean_stale_temp_files(str(tmp_path))))
    sweeper.start()
    sweeper.join()
    assert seen == [[]]
    handle.write(b"still writing")
    handle.close()  # the writer gone (as a killed process's files are): now it is stale
    assert clean_stale_temp_files(str(tmp_path)) == [temp]
    assert os.listdir(tmp_path) == []


def test_a_folder_is_swept_once_per_process(tmp_path: Path) -> None:
    first, handle = open_temp_beside(str(tmp_path / "a.png"))
    handle.close()
    stale_later = leftover(tmp_path)
    second, again = open_temp_beside(str(tmp_path / "b.png"))  # no second sweep of this folder
    again.close()
    assert stale_later.exists()
    assert os.path.exists(first)
    assert os.path.exists(second)


def test_a_folder_spelled_two_ways_is_swept_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folder as spelled is remembered beside its real path: another spelling of a swept
    folder (here a symlink) is not swept again, and each spelling costs one ``realpath``."""
    resolved: list[str] = []
    realpath = os.path.realpath

    def counted(path: str) -> str:
        resolved.append(path)
        return realpath(path)

    monkeypatch.setattr(os.path, "realpath", counted)
    real = tmp_path / "real"
    real.mkdir()
    alias = tmp_path / "alias"
    alias.symlink_to(real)
    first, handle = open_temp_beside(str(real / "a.png"))
    handle.close()
    stale_later = leftover(real)
    second, again = open_temp_beside(str(alias / "b.png"))  # the same folder, spelled anew
    again.close()
    third, last = open_temp_beside(str(alias / "c.png"))  # that spelling, now remembered
    last.close()
    assert stale_later.exists()
    assert all(os.path.exists(path) for path in (first, second, third))
    assert resolved == [str(real), str(alias)]


def test_a_file_where_the_folder_should_be_is_not_a_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    with pytest.raises(NotADirectoryError):
        open_temp_beside(str(blocker / "x.png"))
    with pytest.raises(NotADirectoryError):  # not FileExistsError: that reads "already exists"
        open_temp_beside(str(blocker / "sub" / "x.png"))
    assert os.listdir(tmp_path) == ["blocker"]


def test_without_fcntl_only_a_day_old_part_files_are_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paths, "_CAN_LOCK", False)
    old, fresh = leftover(tmp_path, pid=1), leftover(tmp_path, pid=2)
    (tmp_path / "x.part").write_bytes(b"not ours")
    day = 24 * 3600
    os.utime(old, (old.stat().st_atime - day - 60, old.stat().st_mtime - day - 60))
    assert clean_stale_temp_files(str(tmp_path)) == [str(old)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([fresh.name, "x.part"])


# -- 2. atomic manifest repair -------------------------------------------------------------------


def torn_manifest(path: Path, entries: int = 20) -> bytes:
    lines = [json.dumps({"format": "radient-batch-manifest/1", "batch_id": "b" * 32})]
    for index in range(entries):
        entry = {"index": index, "fp": f"fp{index}", "request_id": f"r{index}"}
        lines.append(json.dumps({**entry, "provider": None, "status": "completed"}))
    data = ("\n".join(lines) + "\n" + '{"index": 20, "fp": "fp20", "sta').encode()
    path.write_bytes(data)
    return data


async def test_a_torn_last_line_is_repaired_by_replacing_the_file(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    data = torn_manifest(path)
    path.chmod(0o600)
    inode = path.stat().st_ino
    book = await Manifest.open(path)
    assert path.read_bytes() == data[: data.rfind(b"\n") + 1]
    assert path.stat().st_ino != inode  # a new file renamed over it, not a rewrite in place
    assert path.stat().st_mode & 0o777 == 0o600
    assert book.batch_id == "b" * 32
    assert all(book.lookup(i, f"fp{i}") is not None for i in range(20))
    assert os.listdir(tmp_path) == ["m.jsonl"]


@pytest.mark.parametrize("failing", ["replace", "fsync"])
async def test_a_failure_during_repair_leaves_the_manifest_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    path = tmp_path / "m.jsonl"
    data = torn_manifest(path)

    def killed(*args: object) -> None:
        raise OSError(5, "killed during the repair")

    monkeypatch.setattr(os, failing, killed)  # what radient_async._manifest calls
    with pytest.raises(OSError, match="killed during the repair"):
        await Manifest.open(path)
    monkeypatch.undo()
    assert path.read_bytes() == data  # every entry still there; the repair is retried next open
    assert os.listdir(tmp_path) == ["m.jsonl"]  # and its temp file is gone
    await Manifest.open(path)
    assert path.read_bytes() == data[: data.rfind(b"\n") + 1]


async def test_a_new_manifest_is_created_whole(tmp_path: Path) -> None:
    path = tmp_path / "new.jsonl"
    book = await Manifest.open(path)
    [header] = path.read_text().splitlines()
    assert json.loads(header)["batch_id"] == book.batch_id
    assert os.listdir(tmp_path) == ["new.jsonl"]


# -- 3. a resumed item's files are verified ------------------------------------------------------


async def test_a_deleted_file_is_downloaded_again_never_regenerated(
    radient_server: ThreadedServer, tmp_path: Path
) -> None:
    manifest, out = tmp_path / "m.jsonl", tmp_path / "out"
    first = await run_batch(radient_server, ["a", "b", "c"], manifest, out)
    assert all(o.ok for o in first)
    completed = [r for r in records(manifest) if r["status"] == "completed"]
    assert len(completed) == 3
    assert all(r["sizes"] == [os.path.getsize(f) for f in r["files"]] for r in completed)
    gone = Path(first[1].paths[0])
    original = gone.read_bytes()
    gone.unlink()
    second = await run_batch(radient_server, ["a", "b", "c"], manifest, out)
    assert all(o.ok for o in second)
    assert [o.resumed for o in second] == [True, False, True]
    assert second[1].paths == first[1].paths
    assert second[1].request_id == first[1].request_id
    assert gone.read_bytes() == original
    assert radient_server.stats.jobs_created == 3
    third = await run_batch(radient_server, ["a", "b", "c"], manifest, out)
    assert all(o.resumed for o in third)  # the new files were recorded
    assert radient_server.stats.jobs_created == 3


async def test_a_truncated_or_emptied_file_is_downloaded_again(
    radient_server: ThreadedServer, tmp_path: Path
) -> None:
    manifest, out = tmp_path / "m.jsonl", tmp_path / "out"
    first = await run_batch(radient_server, ["a", "b"], manifest, out)
    Path(first[0].paths[0]).write_bytes(b"\x89PNG")  # the wrong size
    Path(first[1].paths[0]).write_bytes(b"")
    second = await run_batch(radient_server, ["a", "b"], manifest, out)
    assert [o.resumed for o in second] == [False, False]
    assert all(os.path.getsize(p) > 100 for o in second for p in o.paths)
    assert radient_server.stats.jobs_created == 2


async def test_an_old_entry_without_sizes_is_checked_for_presence_and_content(
    radient_server: ThreadedServer, tmp_path: Path
) -> None:
    manifest, out = tmp_path / "m.jsonl", tmp_path / "out"
    await run_batch(radient_server, ["a", "b"], manifest, out)
    lines = manifest.read_text().splitlines()
    old = [lines[0]]
    for line in lines[1:]:
        record = json.loads(line)
        record.pop("sizes", None)
        record.pop("folder", None)
        old.append(json.dumps(record))
    manifest.write_text("\n".join(old) + "\n")
    second = await run_batch(radient_server, ["a", "b"], manifest, out)
    assert all(o.resumed for o in second)
    Path(second[0].paths[0]).write_bytes(b"")
    third = await run_batch(radient_server, ["a", "b"], manifest, out)
    assert [o.resumed for o in third] == [False, True]
    assert radient_server.stats.jobs_created == 2


@pytest.mark.parametrize("where", ["/etc/passwd", "../outside.png", "symlink"])
async def test_an_edited_manifest_path_outside_the_folder_is_never_returned(
    radient_server: ThreadedServer, tmp_path: Path, where: str
) -> None:
    manifest, out = tmp_path / "m.jsonl", tmp_path / "out"
    [first] = await run_batch(radient_server, ["edited"], manifest, out)
    (tmp_path / "outside.png").write_bytes(b"\x89PNG not from this batch")
    if where == "symlink":
        target = str(out / "link.png")
        os.symlink("/etc/passwd", target)
    elif where.startswith(".."):
        target = str(out / where)
    else:
        target = where
    lines = manifest.read_text().splitlines()
    record = json.loads(lines[-1])
    record["files"] = [target]
    record.pop("sizes")
    manifest.write_text("\n".join([*lines[:-1], json.dumps(record)]) + "\n")
    [second] = await run_batch(radient_server, ["edited"], manifest, out)
    assert second.ok, second.error
    assert not second.resumed
    assert second.paths == first.paths  # downloaded again into the folder
    assert all(os.path.dirname(os.path.realpath(p)) == str(out.resolve()) for p in second.paths)
    assert (tmp_path / "outside.png").read_bytes() == b"\x89PNG not from this batch"
    assert radient_server.stats.jobs_created == 1
    assert records(manifest)[-1]["files"] == list(first.paths)


async def test_a_new_download_to_gets_the_files_without_new_jobs(
    radient_server: ThreadedServer, tmp_path: Path
) -> None:
    manifest = tmp_path / "m.jsonl"
    first = await run_batch(radient_server, ["a", "b"], manifest, tmp_path / "out")
    elsewhere = tmp_path / "elsewhere"
    second = await run_batch(radient_server, ["a", "b"], manifest, elsewhere)
    assert all(o.ok and not o.resumed for o in second)
    assert all(Path(p).parent == elsewhere for o in second for p in o.paths)
    names = sorted(os.path.basename(p) for o in first for p in o.paths)
    assert sorted(p.name for p in elsewhere.iterdir()) == names
    assert radient_server.stats.jobs_created == 2
    # The old folder is a parent of neither, and a folder inside the old one is a new folder too.
    inner = tmp_path / "out" / "inner"
    third = await run_batch(radient_server, ["a", "b"], manifest, inner)
    assert all(o.ok and not o.resumed for o in third)
    assert radient_server.stats.jobs_created == 2


async def test_a_missing_file_of_a_job_the_server_forgot_is_resubmitted_and_says_so(
    tmp_path: Path,
) -> None:
    manifest, out = tmp_path / "m.jsonl", tmp_path / "out"
    with ThreadedServer(ServerConfig(api_key=KEY, seed=3)) as radient:
        [first] = await run_batch(radient, ["lost"], manifest, out)
    Path(first.paths[0]).unlink()
    with ThreadedServer(ServerConfig(api_key=KEY, seed=3)) as fresh:  # knows none of those jobs
        [second] = await run_batch(fresh, ["lost"], manifest, out)
        assert second.ok, second.error
        assert second.resubmitted
        assert second.request_id != first.request_id
        assert fresh.stats.jobs_created == 1
        [third] = await run_batch(fresh, ["lost"], manifest, out)
        assert third.resumed
        assert third.request_id == second.request_id
        assert fresh.stats.jobs_created == 1


def test_the_folders_remembered_stay_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process saving into many folders keeps a bounded memory of them; a forgotten folder is
    simply checked and swept again."""
    monkeypatch.setattr(paths, "_REMEMBERED", 8)
    monkeypatch.setattr(paths, "_swept", set())
    monkeypatch.setattr(paths, "_checked", set())
    for n in range(40):
        folder = tmp_path / f"f{n}"
        check_output_folder(str(folder))
        temp, handle = open_temp_beside(str(folder / "x.png"))
        discard_file(temp, handle)
        assert len(paths._swept) <= 8
        assert len(paths._checked) <= 8
    stale = leftover(tmp_path / "f0")  # f0 was forgotten: its next save sweeps it again
    temp, handle = open_temp_beside(str(tmp_path / "f0" / "y.png"))
    discard_file(temp, handle)
    assert not stale.exists()
    assert not output_folder_checked(str(tmp_path / "f0"))
