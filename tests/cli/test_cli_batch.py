"""``radient batch``: text and JSONL inputs, JSON lines, gallery, manifest resume, progress."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner

from radient_async import ImageSize
from radient_async._batch_items import to_request
from radient_async._keys import request_fingerprint
from radient_async._manifest import Manifest, ManifestEntry
from radient_async.cli import cli
from radient_async.cli._terminal import Tally, _Lines
from radient_async.server import LocalServer, ServerConfig, ThreadedServer

FAST = ["--local", "--local-latency", "0.02"]
KEY = "batch-cli-key"


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def remote(server: ThreadedServer | LocalServer, key: str = KEY) -> dict[str, str]:
    return {"RADIENT_API_KEY": key, "RADIENT_BASE_URL": server.base_url}


def json_lines(stdout: str) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in stdout.splitlines()]
    return sorted(records, key=lambda record: int(record["index"]))


def test_prompts_file_with_comments_a_failure_json_lines_and_a_gallery(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a cat\n# a comment\n\n  a dog [fail]  \na bird\n")
    gallery = tmp_path / "site" / "index.html"
    out = tmp_path / "out"
    code, stdout, stderr = invoke(
        *FAST, "--json", "batch", str(prompts), "-o", str(out), "--size", "32x32",
        "--gallery", str(gallery),
    )  # fmt: skip
    assert code == 5
    lines = json_lines(stdout)
    assert [(r["index"], r["prompt"], r["ok"]) for r in lines] == [
        (0, "a cat", True),
        (1, "a dog [fail]", False),
        (2, "a bird", True),
    ]
    assert "failed" in str(lines[1]["error"])
    assert "item 1 ('a dog [fail]') failed: job imgreq_" in stderr
    assert re.search(r"done: 2 ok, 1 failed, 2 images in .*out", stderr)
    page = gallery.read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == 2
    for source in sources:  # relative to the page, and pointing at the saved files
        assert source.startswith("../out/imgreq_")
        assert (gallery.parent / source).resolve().is_file()
    assert page.index("a cat") < page.index("a bird")


def test_plain_output_is_one_saved_path_per_line(tmp_path: Path) -> None:
    prompts = tmp_path / "p.txt"
    prompts.write_text("one\ntwo\n")
    code, stdout, stderr = invoke(
        *FAST, "batch", str(prompts), "-o", str(tmp_path / "o"), "--size", "16x16", "-n", "2"
    )
    assert code == 0, stderr
    paths = stdout.splitlines()
    assert len(paths) == 4
    assert all(Path(p).is_file() for p in paths)


def test_jsonl_requests_with_their_own_fields(tmp_path: Path) -> None:
    requests = tmp_path / "requests.jsonl"
    requests.write_text(
        json.dumps({"prompt": "one", "image_size": {"width": 32, "height": 16}, "num_images": 2})
        + "\n\n"
        + json.dumps({"prompt": "two", "provider": "sketch", "seed": 3})
        + "\n"
    )
    code, stdout, stderr = invoke(
        *FAST, "--json", "batch", str(requests), "-o", str(tmp_path / "o"), "--size", "16x16"
    )
    assert code == 0, stderr
    lines = json_lines(stdout)
    assert [len(r["paths"]) for r in lines] == [2, 1]


def test_json_objects_are_detected_without_the_jsonl_suffix(tmp_path: Path) -> None:
    requests = tmp_path / "requests.txt"
    requests.write_text('{"prompt": "detected", "image_size": {"width": 16, "height": 16}}\n')
    code, stdout, _ = invoke(*FAST, "--json", "batch", str(requests), "-o", str(tmp_path))
    assert code == 0
    assert json_lines(stdout)[0]["prompt"] == "detected"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("empty.txt", "# only a comment\n\n", "holds no prompts"),
        ("bad.jsonl", '{"prompt": "ok"}\n{"prompt": \n', "bad.jsonl line 2: not JSON"),
        ("list.jsonl", '["a", "list"]\n', "line 1: expected a JSON object"),
        ("size.jsonl", '{"prompt": "x", "image_size": "huge"}\n', "line 1: image_size"),
        ("source.jsonl", '{"prompt": "x", "source": "a.png"}\n', "source_url"),
    ],
)
def test_bad_input_exits_2_before_any_job(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with ThreadedServer(ServerConfig(api_key=KEY)) as server:
        code, stdout, stderr = invoke("batch", str(path), "-o", str(tmp_path), env=remote(server))
        assert server.stats.jobs_created == 0
        assert server.stats.provider_calls == 0
    assert code == 2
    assert stdout == ""
    assert stderr.startswith("error: ")
    assert message in stderr


def test_a_manifest_resumes_without_regenerating_and_retries_failures(tmp_path: Path) -> None:
    prompts = tmp_path / "p.txt"
    prompts.write_text("".join(f"prompt {i}\n" for i in range(6)) + "this one [fail]\n")
    manifest = tmp_path / "state" / "batch.jsonl"
    args = ["--json", "batch", str(prompts), "-o", str(tmp_path / "o"), "--size", "16x16"]
    args += ["--manifest", str(manifest)]
    with ThreadedServer(ServerConfig(api_key=KEY, latency=0.01)) as server:
        first = invoke(*args, env=remote(server))
        assert server.stats.jobs_created == 7
        second = invoke(*args, env=remote(server))
        assert server.stats.jobs_created == 8  # only the failed item was tried again
    assert (first[0], second[0]) == (5, 5)
    before, after = json_lines(first[1]), json_lines(second[1])
    for old, new in zip(before[:6], after[:6], strict=True):
        assert new["resumed"] is True
        assert (new["request_id"], new["paths"]) == (old["request_id"], old["paths"])
    assert after[6]["resumed"] is False
    assert after[6]["request_id"] != before[6]["request_id"]
    assert "(6 resumed)" in second[2]


def test_a_manifest_for_other_inputs_is_refused(tmp_path: Path) -> None:
    prompts, manifest = tmp_path / "p.txt", tmp_path / "m.jsonl"
    prompts.write_text("first\n")
    base = [*FAST, "batch", str(prompts), "-o", str(tmp_path), "--manifest", str(manifest)]
    assert invoke(*base, "--size", "16x16")[0] == 0
    code, _, stderr = invoke(*base, "--size", "24x24")
    assert code == 2
    assert "error: manifest: item 0 differs" in stderr


@pytest.mark.anyio
async def test_jobs_the_server_no_longer_knows_are_submitted_again(tmp_path: Path) -> None:
    """What a rerun after Ctrl-C with ``--local`` meets: the manifest names a vanished job."""
    prompts, manifest = tmp_path / "p.txt", tmp_path / "m.jsonl"
    prompts.write_text("kept\nvanished\n")
    size = {"image_size": ImageSize(16, 16)}
    book = await Manifest.open(manifest)
    fingerprint = request_fingerprint(to_request("vanished", size))
    await book.record(ManifestEntry(1, fingerprint, "imgreq_" + "0" * 24, "default", "submitted"))
    args = ["--json", "batch", str(prompts), "-o", str(tmp_path / "o"), "--size", "16x16"]
    async with LocalServer(ServerConfig(api_key=KEY)) as server:
        code, stdout, stderr = await anyio.to_thread.run_sync(
            lambda: invoke(*args, "--manifest", str(manifest), env=remote(server))
        )
        assert server.stats.jobs_created == 2
    assert code == 0, stderr
    assert "1 unfinished jobs are unknown to the server" in stderr
    lines = json_lines(stdout)
    assert [(r["index"], r["ok"]) for r in lines] == [(0, True), (1, True)]
    assert "done: 2 ok, 0 failed, 2 images" in stderr
    statuses = [json.loads(line) for line in manifest.read_text().splitlines()[1:]]
    assert [s["status"] for s in statuses if s["index"] == 1][-1] == "completed"


def test_a_wrong_key_stops_the_batch_at_once_with_exit_3(tmp_path: Path) -> None:
    prompts = tmp_path / "p.txt"
    prompts.write_text("a\nb\n")
    with ThreadedServer(ServerConfig(api_key=KEY)) as server:
        code, stdout, stderr = invoke(
            "--debug",
            "batch",
            str(prompts),
            "-o",
            str(tmp_path),
            env=remote(server, "sk-wrong-123"),
        )
        assert server.stats.jobs_created == 0
    assert code == 3
    assert stdout == ""
    assert stderr.strip().splitlines()[-1].startswith("error: ")
    assert "sk-wrong-123" not in stderr


def test_live_progress_on_a_terminal(tmp_path: Path) -> None:
    prompts = tmp_path / "p.txt"
    prompts.write_text("".join(f"p{i}\n" for i in range(8)))
    code, stdout, stderr = invoke(
        *FAST, "batch", str(prompts), "-o", str(tmp_path / "o"), "--size", "16x16",
        env={"FORCE_COLOR": "1", "COLUMNS": "200"},
    )  # fmt: skip
    assert code == 0, stderr
    assert len(stdout.splitlines()) == 8
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", stderr)  # without the terminal's escapes
    assert "8/8" in shown  # the bar's final state
    assert "0 running · 8 done · 0 failed · 8 images" in shown
    assert "done: 8 ok, 0 failed, 8 images" in shown


def test_progress_lines_for_logs(capsys: pytest.CaptureFixture[str]) -> None:
    tally = Tally(total=10, taken=4, done=2, failed=1, images=2)
    _Lines(interval=0).refresh(tally)
    line = capsys.readouterr().err
    assert line.startswith("radient: 3/10 · 1 running · 2 done · 1 failed · 2 images")


def test_running_counts_items_taken_up_not_submissions() -> None:
    """A resumed run re-attaches or resubmits jobs: running is what is in flight, no more."""
    tally = Tally(total=40, taken=18, done=10, resumed=10)
    assert tally.running == 8
    assert tally.line().startswith("8 running · 10 done · 0 failed · 10 resumed · ")
    assert tally.line(width=30) == "8 running · 10 done · 0 failed"
