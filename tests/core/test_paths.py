"""Safe file names, and the atomic temp-file-then-commit steps of a download."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radient_async._paths import (
    TEMP_SUFFIX,
    commit_file,
    discard_file,
    open_temp_beside,
    safe_filename,
)

# -- safe_filename -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_id", "index", "extension", "name"),
    [
        ("imgreq_0123abcd", 0, ".png", "imgreq_0123abcd_0.png"),
        ("imgreq_0123abcd", 7, ".jpg", "imgreq_0123abcd_7.jpg"),
        ("a-b.c_d", 1, ".webp", "a-b.c_d_1.webp"),
        ("../../etc/passwd", 0, ".png", "etc_passwd_0.png"),
        ("..\\..\\windows\\system32", 0, ".png", "windows_system32_0.png"),
        ("/etc/passwd", 0, ".png", "etc_passwd_0.png"),
        ("C:\\Users\\x", 0, ".png", "C_Users_x_0.png"),
        ("~/.ssh/id_rsa", 0, ".png", "ssh_id_rsa_0.png"),
        ("", 0, ".png", "image_0.png"),
        (".", 0, ".png", "image_0.png"),
        ("..", 2, ".png", "image_2.png"),
        ("...___...", 0, ".png", "image_0.png"),
        (".hidden", 0, ".png", "hidden_0.png"),
        ("a b\tc\nd", 0, ".png", "a_b_c_d_0.png"),
        ("nul\x00byte", 0, ".png", "nul_byte_0.png"),
        ("héllo wörld", 0, ".png", "h_llo_w_rld_0.png"),
        ("图像", 0, ".png", "image_0.png"),
        ("🎨art", 0, ".png", "art_0.png"),
        ("x" * 500, 0, ".png", "x" * 120 + "_0.png"),
    ],
)
def test_safe_filename(request_id: str, index: int, extension: str, name: str) -> None:
    assert safe_filename(request_id, index, extension) == name


@pytest.mark.parametrize(
    ("extension", "result"),
    [
        (".png", ".png"),
        (".JPG", ".JPG"),
        (".jpeg2000", ".jpeg2000"),  # 8 characters: the longest allowed
        (".jpeg20000", ".bin"),  # 9 characters
        ("png", ".bin"),
        ("", ".bin"),
        (".", ".bin"),
        ("..png", ".bin"),
        ("./../x", ".bin"),
        (".p/g", ".bin"),
        (".png\n", ".bin"),
        (".pñg", ".bin"),
    ],
)
def test_unsafe_extensions_become_bin(extension: str, result: str) -> None:
    assert safe_filename("r", 0, extension) == f"r_0{result}"


def test_the_index_is_rendered_as_an_integer() -> None:
    assert safe_filename("r", True, ".png") == "r_1.png"
    assert safe_filename("r", 12, ".png") == "r_12.png"


@settings(max_examples=200, deadline=None)
@given(
    request_id=st.text(max_size=200)
    | st.sampled_from(["..", ".", "../..", "/", "\\", "C:", "~", "\x00"]),
    index=st.integers(0, 10_000),
    extension=st.text(max_size=10) | st.sampled_from([".png", ".jpg", "..", "/"]),
)
def test_names_never_escape_the_directory(request_id: str, index: int, extension: str) -> None:
    name = safe_filename(request_id, index, extension)
    assert "/" not in name
    assert "\\" not in name
    assert "\x00" not in name
    assert name not in (".", "..", "")
    assert not name.startswith(".")
    assert name.isascii()
    assert len(name) <= 120 + 1 + len(str(index)) + 9
    assert os.path.basename(name) == name
    assert name.endswith(f"_{index}{os.path.splitext(name)[1]}")


# -- temp files and commits ----------------------------------------------------------------------


def test_temp_file_is_hidden_beside_the_target(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    temp, handle = open_temp_beside(str(target))
    try:
        assert os.path.dirname(temp) == str(tmp_path)
        assert os.path.basename(temp).startswith(".out.png.")
        assert temp.endswith(TEMP_SUFFIX)
        assert os.path.exists(temp)
        assert not target.exists()
    finally:
        discard_file(temp, handle)


def test_temp_files_are_unique(tmp_path: Path) -> None:
    opened = [open_temp_beside(str(tmp_path / "same.png")) for _ in range(20)]
    try:
        assert len({temp for temp, _ in opened}) == 20
    finally:
        for temp, handle in opened:
            discard_file(temp, handle)


def test_missing_directories_are_created(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c.png"
    temp, handle = open_temp_beside(str(target))
    commit_file(temp, handle, str(target), overwrite=False)
    assert target.read_bytes() == b""
    assert (tmp_path / "a" / "b").is_dir()


def test_a_bare_file_name_goes_in_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    temp, handle = open_temp_beside("plain.png")
    handle.write(b"data")
    commit_file(temp, handle, "plain.png", overwrite=False)
    assert (tmp_path / "plain.png").read_bytes() == b"data"
    assert os.listdir(tmp_path) == ["plain.png"]


@pytest.mark.parametrize("fsync", [False, True])
def test_commit_moves_the_bytes_into_place(tmp_path: Path, fsync: bool) -> None:
    target = tmp_path / "img.png"
    temp, handle = open_temp_beside(str(target))
    handle.write(b"\x89PNG payload")
    commit_file(temp, handle, str(target), overwrite=False, fsync=fsync)
    assert target.read_bytes() == b"\x89PNG payload"
    assert not os.path.exists(temp)
    assert handle.closed
    assert os.listdir(tmp_path) == ["img.png"]


def test_commit_without_overwrite_never_replaces_a_file(tmp_path: Path) -> None:
    target = tmp_path / "img.png"
    target.write_bytes(b"precious")
    temp, handle = open_temp_beside(str(target))
    handle.write(b"new")
    with pytest.raises(FileExistsError):
        commit_file(temp, handle, str(target), overwrite=False)
    assert target.read_bytes() == b"precious"
    assert os.listdir(tmp_path) == ["img.png"]  # the temp file is cleaned up


def test_commit_with_overwrite_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "img.png"
    target.write_bytes(b"old")
    temp, handle = open_temp_beside(str(target))
    handle.write(b"new")
    commit_file(temp, handle, str(target), overwrite=True)
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["img.png"]


def test_commit_falls_back_to_rename_without_hard_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(source: str, target: str) -> None:
        raise PermissionError("hard links are not supported here")

    monkeypatch.setattr(os, "link", no_links)
    target = tmp_path / "img.png"
    temp, handle = open_temp_beside(str(target))
    handle.write(b"new")
    commit_file(temp, handle, str(target), overwrite=False)
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["img.png"]

    temp, handle = open_temp_beside(str(target))
    handle.write(b"newer")
    with pytest.raises(FileExistsError):
        commit_file(temp, handle, str(target), overwrite=False)
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["img.png"]


def test_discard_removes_the_temp_file_and_tolerates_it_being_gone(tmp_path: Path) -> None:
    temp, handle = open_temp_beside(str(tmp_path / "x.png"))
    handle.write(b"partial")
    discard_file(temp, handle)
    assert handle.closed
    assert os.listdir(tmp_path) == []
    discard_file(temp, handle)  # a second discard is harmless
    assert os.listdir(tmp_path) == []
