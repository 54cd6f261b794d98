"""``examples/notebook.py``: its cells run like a kernel runs them, each with top-level await."""

from __future__ import annotations

import ast
import inspect
import re
import types
from pathlib import Path
from typing import Any

import anyio
import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "notebook.py"
TOP_LEVEL_AWAIT = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT

pytestmark = pytest.mark.anyio


def code_cells(source: str) -> list[str]:
    """The code cells of a jupytext percent-format file (markdown cells and the header dropped)."""
    cells: list[list[str]] = []
    for line in source.splitlines():
        if line.startswith("# %%"):
            cells.append([] if "[markdown]" not in line else ["# markdown"])
        elif cells:
            cells[-1].append(line)
    return ["\n".join(cell) for cell in cells if cell[:1] != ["# markdown"]]


async def run_cell(cell: str, namespace: dict[str, Any]) -> Any:
    """Execute a cell as IPython does: top-level await allowed, the last expression returned."""
    tree = ast.parse(cell)
    last = tree.body[-1] if tree.body else None
    if isinstance(last, ast.Expr):
        del tree.body[-1]
    await execute(compile(tree, str(NOTEBOOK), "exec", flags=TOP_LEVEL_AWAIT), namespace)
    if not isinstance(last, ast.Expr):
        return None
    expression = ast.Expression(last.value)
    return await execute(
        compile(expression, str(NOTEBOOK), "eval", flags=TOP_LEVEL_AWAIT), namespace
    )


async def execute(code: types.CodeType, namespace: dict[str, Any]) -> Any:
    value = eval(code, namespace)  # noqa: S307 - our own example file
    return await value if code.co_flags & inspect.CO_COROUTINE else value


def captions(page: str) -> list[str]:
    return re.findall(r"<figcaption[^>]*>(.*?)</figcaption>", page)


def sources(page: str) -> list[str]:
    return re.findall(r'<img src="([^"]*)"', page)


async def test_every_cell_runs_in_its_own_task_and_displays(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    cells = code_cells(NOTEBOOK.read_text())
    assert len(cells) == 6
    namespace: dict[str, Any] = {"__name__": "__main__"}
    shown: list[Any] = []

    async def run(cell: str) -> None:
        shown.append(await run_cell(cell, namespace))

    for cell in cells:  # a fresh task per cell, as a kernel may do: nothing may span two cells
        async with anyio.create_task_group() as group:
            group.start_soon(run, cell)

    base_url, lighthouse, paths, finished, lakes, _ = shown
    assert base_url.startswith("http://127.0.0.1:")
    assert [Path(p).parent.name for p in paths] == ["notebook-images"]
    assert all(Path(p).is_file() for p in paths)
    assert sorted(finished) == list(range(12))
    assert namespace["server"].stats.jobs_created == 14

    # one generation: its two images embedded as thumbnails, nothing pointing at the server
    page = lighthouse._repr_html_()
    assert len(sources(page)) == 2
    assert all(
        src.startswith(("data:image/jpeg;base64,", "data:image/png;base64,"))
        for src in sources(page)
    )
    assert captions(page) == ["a lighthouse at dusk"] * 2

    # the batch: in prompt order whatever order the jobs finished in, shown from the saved files
    page = lakes._repr_html_()
    assert "<h3>12 lakes</h3>" in page
    assert captions(page) == namespace["prompts"]
    saved = [o.paths[0] for o in sorted(namespace["outcomes"], key=lambda o: o.index)]
    assert sources(page) == [
        Path(p).resolve().relative_to(tmp_path.resolve()).as_posix() for p in saved
    ]
    assert all((tmp_path / src).is_file() for src in sources(page))

    # the server is stopped: no image left behind it
    for gallery in (lighthouse, lakes):
        assert "http://" not in gallery._repr_html_()
        assert "127.0.0.1" not in gallery._repr_html_()

    # the bar (tqdm's text bar on stderr, as on a terminal) reached the end, with no warning
    captured = capsys.readouterr()
    assert "12/12" in captured.err
    assert "IProgress" not in captured.err + captured.out
