"""The ``radient`` command: real HTTP to a local server, exit codes, JSON, Ctrl-C and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner
from PIL import Image

from radient_async.cli import cli, main
from radient_async.server import ServerConfig, ThreadedServer

FAST = ["--local", "--local-latency", "0.02"]


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_generate_local_saves_real_pngs(tmp_path: Path) -> None:
    code, out, err = run(
        *FAST, "generate", "a lighthouse", "-n", "2", "--size", "64x64", "-o", str(tmp_path)
    )
    assert code == 0, err
    paths = out.split()
    assert len(paths) == 2
    for path in paths:
        with Image.open(path) as picture:
            assert picture.size == (64, 64)
    assert "submitted imgreq_" in err
    assert "COMPLETED" in err


def test_generate_json_output(tmp_path: Path) -> None:
    code, out, _ = run(
        *FAST,
        "--json",
        "generate",
        "json please",
        "--size",
        "32x32",
        "--sync",
        "--seed",
        "7",
        "-o",
        str(tmp_path),
    )
    assert code == 0
    data = json.loads(out)
    assert data["request_id"].startswith("imgreq_")
    assert data["seed"] == 7
    assert len(data["paths"]) == len(data["urls"]) == 1


def test_generate_image_to_image_from_a_file(tmp_path: Path) -> None:
    source = tmp_path / "in.png"
    Image.new("RGB", (32, 32), (0, 0, 255)).save(source)
    code, out, err = run(
        *FAST,
        "generate",
        "restyle",
        "--source",
        str(source),
        "--strength",
        "1.0",
        "--size",
        "32x32",
        "-o",
        str(tmp_path / "out"),
    )
    assert code == 0, err
    with Image.open(out.strip()) as picture:
        assert picture.convert("RGB").getpixel((16, 16))[2] > 200


def test_failed_job_exits_5_with_one_line(tmp_path: Path) -> None:
    code, out, err = run(*FAST, "generate", "this will [fail]", "-o", str(tmp_path))
    assert code == 5
    assert out == ""
    assert err.strip().splitlines()[-1].startswith("error: job imgreq_")
    assert "Traceback" not in err


def test_usage_and_validation_errors_exit_2(tmp_path: Path) -> None:
    assert run("generate")[0] == 2
    code, _, err = run(*FAST, "generate", "x", "-n", "0", "-o", str(tmp_path))
    assert code == 2
    assert err == "error: -n/--num-images: must be between 1 and 8, got 0\n"
    assert run(*FAST, "generate", "x", "--size", "axb")[0] == 2


def test_missing_key_exits_3_without_a_traceback() -> None:
    code, _, err = run("providers", env={"RADIENT_API_KEY": "", "RADIENT_BASE_URL": ""})
    assert code == 3
    assert err.startswith("error: no API key")


def test_wrong_key_exits_3_and_never_prints_it() -> None:
    config = ServerConfig(api_key="right-key")
    with ThreadedServer(config) as server:
        env = {"RADIENT_API_KEY": "sk-secret-wrong", "RADIENT_BASE_URL": server.base_url}
        code, out, err = run("--debug", "providers", env=env)
    assert code == 3
    assert "sk-secret-wrong" not in out + err
    assert "401" in err


def test_connection_error_exits_4() -> None:
    env = {"RADIENT_API_KEY": "k", "RADIENT_BASE_URL": "http://127.0.0.1:9/v1"}
    code, _, err = run("--timeout", "1", "providers", env=env)  # retried until the timeout
    assert code == 4
    assert err.startswith("error: ")


def test_providers_status_and_download(tmp_path: Path) -> None:
    with ThreadedServer(ServerConfig(api_key="k")) as server:
        env = {"RADIENT_API_KEY": "k", "RADIENT_BASE_URL": server.base_url}
        code, out, _ = run("--json", "providers", env=env)
        assert json.loads(out) == {"providers": ["default", "sketch", "inline"]}
        code, out, _ = run(
            "--json", "generate", "later", "--size", "32x32", "-o", str(tmp_path / "a"), env=env
        )
        request_id = json.loads(out)["request_id"]
        code, out, _ = run("status", request_id, env=env)
        assert (code, out.strip()) == (0, f"{request_id}: COMPLETED")
        code, out, _ = run("download", request_id, "-o", str(tmp_path / "b"), env=env)
        assert code == 0
        assert Path(out.strip()).name == f"{request_id}_0.png"
        assert run("status", "imgreq_unknown", env=env)[0] == 4


def test_batch_text_file_with_gallery_and_json(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a cat\n# a comment\n\na dog [fail]\na bird\n")
    gallery = tmp_path / "gallery.html"
    code, out, err = run(
        *FAST,
        "--json",
        "batch",
        str(prompts),
        "-o",
        str(tmp_path / "out"),
        "--size",
        "32x32",
        "--gallery",
        str(gallery),
        "--no-progress",
    )
    assert code == 5
    lines = [json.loads(line) for line in out.splitlines()]
    assert sorted(line["index"] for line in lines) == [0, 1, 2]
    assert [line["ok"] for line in sorted(lines, key=lambda x: x["index"])] == [True, False, True]
    assert "done: 2 ok, 1 failed, 2 images" in err
    page = gallery.read_text()
    assert page.count("<img") == 2
    assert "a bird" in page
    assert 'src="out/' in page


def test_batch_jsonl_requests(tmp_path: Path) -> None:
    requests = tmp_path / "requests.jsonl"
    requests.write_text(
        json.dumps({"prompt": "one", "image_size": {"width": 32, "height": 32}, "num_images": 2})
        + "\n"
        + json.dumps({"prompt": "two", "image_size": "square", "provider": "sketch"})
        + "\n"
    )
    code, out, err = run(*FAST, "batch", str(requests), "-o", str(tmp_path / "o"), "--no-progress")
    assert code == 0, err
    assert len(out.split()) == 3


def test_main_returns_exit_codes() -> None:
    assert main(["--version"]) == 0
    assert main(["generate"]) == 2


def test_subprocess_generate_local(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "radient_async.cli",
            "--local",
            "--local-latency",
            "0.05",
            "generate",
            "from a real process",
            "--size",
            "48x48",
            "-o",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    [path] = done.stdout.split()
    with Image.open(path) as picture:
        assert picture.size == (48, 48)


def test_ctrl_c_exits_130_leaves_no_partial_files_and_resumes(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("".join(f"prompt number {i}\n" for i in range(60)))
    out, manifest = tmp_path / "out", tmp_path / "batch.jsonl"
    config = ServerConfig(api_key="k", latency=0.4, latency_jitter=0.3, seed=2)
    with ThreadedServer(config) as server:
        env = {**os.environ, "RADIENT_API_KEY": "k", "RADIENT_BASE_URL": server.base_url}
        command = [
            sys.executable,
            "-m",
            "radient_async.cli",
            "batch",
            str(prompts),
            "-o",
            str(out),
            "--manifest",
            str(manifest),
            "--size",
            "32x32",
            "--concurrency",
            "8",
            "--no-progress",
        ]
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(list(out.glob("*.png"))) < 5:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 130, err
        assert "interrupted" in err
        assert not list(out.glob(".*.part"))
        done_before = len(list(out.glob("*.png")))
        assert 5 <= done_before < 60
        rerun = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert rerun.returncode == 0, rerun.stderr
        assert len(list(out.glob("*.png"))) == 60
        assert server.stats.jobs_created == 60  # nothing generated twice
