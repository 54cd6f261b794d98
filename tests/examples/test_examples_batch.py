"""``examples/batch_script.py``: files, manifest, gallery and a resumed rerun, on a local server."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"{name}_example", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_batch_script_files_manifest_gallery_and_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = load("batch_script")
    out = tmp_path / "out"
    args = ["--local", "-o", str(out), "--limit", "30", "--concurrency", "16"]
    assert script.main(args) == 0
    assert len(list(out.glob("*.png"))) == 30
    records = [json.loads(line) for line in (out / "batch.jsonl").read_text().splitlines()]
    assert sum(r.get("status") == "completed" for r in records) == 30
    page = (out / "gallery.html").read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == 30
    assert all((out / source).is_file() for source in sources)
    assert "a lighthouse in watercolour at dawn, study 0" in page
    assert "30 done (0 from an earlier run), 0 failed" in capsys.readouterr().out

    assert script.main(args) == 0  # a rerun: everything is resumed, nothing generated again
    assert "30 done (30 from an earlier run), 0 failed" in capsys.readouterr().out
    assert len(list(out.glob("*.png"))) == 30


def test_batch_script_makes_1000_distinct_prompts_and_reads_a_file(tmp_path: Path) -> None:
    script = load("batch_script")
    prompts = script.made_up_prompts(1000)
    assert len(set(prompts)) == 1000
    listing = tmp_path / "prompts.txt"
    listing.write_text("# my prompts\nfirst\n\nsecond\n")
    assert script.read_prompts(listing) == ["first", "second"]
