"""``examples/quickstart.py``: the README quickstart, run with ``--local`` in a real process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_quickstart_with_local_saves_two_landscape_pngs(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py"), "--local", "-o", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    pngs = sorted(tmp_path.glob("*.png"))
    assert len(pngs) == 2
    assert str(pngs[0]) in done.stdout
    with Image.open(pngs[0]) as picture:
        assert picture.size == (1024, 576)
