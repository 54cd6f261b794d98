"""The released package: the wheel a release would publish, built and installed from scratch.

Nothing is published to a package index from here, so the README's release install line is
proven on the artifact itself: the wheel is built (hatchling, no network), its metadata carries
the dependencies, extras and entry points, and, installed into a folder of its own, it imports
and runs without the checkout on the path.
"""

from __future__ import annotations

import email.parser
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("hatchling")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run(
        [*pip, "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("radient_async-*-py3-none-any.whl")
    return built


def test_the_wheel_carries_the_package_its_types_and_its_entry_points(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.Parser().parsestr(archive.read(meta_name).decode())
        entry_points = archive.read(meta_name.replace("METADATA", "entry_points.txt")).decode()
    assert "radient_async/py.typed" in names
    assert "radient_async/server/__init__.py" in names
    assert not [n for n in names if n.startswith("tests/") or "__pycache__" in n]
    requires = metadata.get_all("Requires-Dist") or []
    for dependency in ("aiohttp", "anyio", "attrs", "cattrs"):
        assert any(r.startswith(dependency) and "extra ==" not in r for r in requires)
    extras = set(metadata.get_all("Provides-Extra") or [])
    assert {"cli", "server", "progress", "ray", "dev"} <= extras
    assert "radient = radient_async.cli:main" in entry_points
    assert "radient_async = radient_async.testing" in entry_points  # the pytest plugin


def test_the_installed_wheel_runs_without_the_checkout(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target)]
    subprocess.run(
        [*pip, str(wheel)],
        check=True,
        capture_output=True,
    )
    code = (
        "import radient_async, radient_async.cli, sys; "
        "print(radient_async.__file__); sys.argv = ['radient', '--version']; "
        "radient_async.cli.main()"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    location, _, rest = done.stdout.partition("\n")
    assert location.startswith(str(target)), done.stdout + done.stderr
    assert "0.1.0" in rest, done.stdout + done.stderr
