"""``radient generate``: real HTTP to an embedded local server, real PNGs on disk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from PIL import Image

from radient_async import ImageSize
from radient_async.cli import cli
from radient_async.cli._commands import SIZE

FAST = ["--local", "--local-latency", "0.02"]


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_saves_real_pngs_and_prints_one_path_per_line(tmp_path: Path) -> None:
    out = tmp_path / "images"
    code, stdout, stderr = invoke(
        "generate", *FAST, "a lighthouse", "-n", "2", "--size", "64x64", "-o", str(out)
    )
    assert code == 0, stderr
    paths = stdout.splitlines()
    assert len(paths) == 2
    for path in paths:
        assert Path(path).parent == out
        with Image.open(path) as picture:
            assert picture.format == "PNG"
            assert picture.size == (64, 64)
    assert "submitted imgreq_" in stderr
    assert ": COMPLETED" in stderr


def test_options_before_the_command_name_work_too(tmp_path: Path) -> None:
    code, stdout, _ = invoke(
        *FAST, "generate", "early options", "--size", "16x16", "-o", str(tmp_path)
    )
    assert code == 0
    assert len(stdout.split()) == 1


def test_json_output_for_a_sync_generation_with_a_seed(tmp_path: Path) -> None:
    code, stdout, stderr = invoke(
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
    assert code == 0, stderr
    data = json.loads(stdout)
    assert data["request_id"].startswith("imgreq_")
    assert (data["status"], data["seed"], data["prompt"]) == ("COMPLETED", 7, "json please")
    assert len(data["paths"]) == len(data["urls"]) == 1
    assert Path(data["paths"][0]).is_file()


def test_image_to_image_from_a_file(tmp_path: Path) -> None:
    source = tmp_path / "in.png"
    Image.new("RGB", (32, 32), (0, 0, 255)).save(source)
    code, stdout, stderr = invoke(
        *FAST,
        "generate",
        "restyle it",
        "--source",
        str(source),
        "--strength",
        "1.0",
        "--size",
        "32x32",
        "-o",
        str(tmp_path / "out"),
    )
    assert code == 0, stderr
    with Image.open(stdout.strip()) as picture:
        assert picture.convert("RGB").getpixel((16, 16))[2] > 200  # the source shows through


def test_inline_provider_images_are_decoded_and_saved(tmp_path: Path) -> None:
    code, stdout, _ = invoke(
        *FAST, "--json", "generate", "inline", "--provider", "inline", "--sync", "--size", "24x24",
        "-o", str(tmp_path),
    )  # fmt: skip
    assert code == 0
    data = json.loads(stdout)
    assert data["urls"][0].startswith("data:image/png;base64,")
    with Image.open(data["paths"][0]) as picture:
        assert picture.size == (24, 24)


def test_a_failed_job_exits_5_with_one_error_line(tmp_path: Path) -> None:
    code, stdout, stderr = invoke(*FAST, "generate", "this will [fail]", "-o", str(tmp_path))
    assert code == 5
    assert stdout == ""
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: job imgreq_")
    assert "failed" in last
    assert "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-n", "0"], "-n/--num-images: must be between 1 and 8, got 0"),
        (["-n", "9"], "-n/--num-images: must be between 1 and 8, got 9"),
        (["--strength", "0.5"], "--strength: only applies to image-to-image (give a --source)"),
        (["--seed", "-1"], "--seed: must be between 0"),
        (["--source", "no/such/file.png"], "--source"),
    ],
)
def test_invalid_values_exit_2_before_any_request(
    tmp_path: Path, args: list[str], message: str
) -> None:
    code, _, stderr = invoke(*FAST, "generate", "x", *args, "-o", str(tmp_path))
    assert code == 2, stderr
    assert stderr.startswith("error: ")
    assert message in stderr
    assert stderr.count("\n") == 1
    assert "_" not in stderr.split(":")[1]  # an option, not a Python argument name
    assert list(tmp_path.iterdir()) == []


def test_usage_errors_exit_2() -> None:
    assert invoke("generate")[0] == 2  # missing PROMPT
    code, _, stderr = invoke(*FAST, "generate", "x", "--size", "huge")
    assert code == 2
    assert "neither a size name" in stderr


def test_size_option_accepts_names_and_width_x_height() -> None:
    assert SIZE.convert("Square", None, None) == "square"
    assert SIZE.convert(" 64X48 ", None, None) == ImageSize(64, 48)
    for bad in ("axb", "8x8", "64x", "enormous", "64x64x64"):
        with pytest.raises(click.BadParameter):
            SIZE.convert(bad, None, None)


def test_spinner_on_a_terminal_keeps_stdout_clean(tmp_path: Path) -> None:
    code, stdout, stderr = invoke(
        *FAST, "generate", "tty", "--size", "16x16", "-o", str(tmp_path), env={"FORCE_COLOR": "1"}
    )
    assert code == 0, stderr
    [path] = stdout.splitlines()
    assert Path(path).is_file()


def test_a_real_process_writes_real_pngs(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "radient_async.cli", "generate", "--local", "--local-latency",
         "0.05", "from a real process", "-n", "2", "--size", "48x48", "-o", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    paths = done.stdout.split()
    assert len(paths) == 2
    for path in paths:
        with Image.open(path) as picture:
            assert (picture.format, picture.size) == ("PNG", (48, 48))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(Path(p).name for p in paths)
