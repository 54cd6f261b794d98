"""``examples/notebook.py``: its cells run like a kernel runs them, each with top-level await."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import sys
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


def fake_ipython(monkeypatch: pytest.MonkeyPatch) -> None:
    """``IPython.display.HTML`` when IPython is not installed (it always is in Jupyter)."""
    if importlib.util.find_spec("IPython") is None:

        class HTML:
            def __init__(self, data: str) -> None:
                self.data = data

            def _repr_html_(self) -> str:
                return self.data

        display = types.ModuleType("IPython.display")
        display.HTML = HTML  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "IPython", types.ModuleType("IPython"))
        monkeypatch.setitem(sys.modules, "IPython.display", display)


async def test_every_cell_runs_in_its_own_task_and_displays(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake_ipython(monkeypatch)
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

    base_url, result, paths, count, grid, _ = shown
    assert base_url.startswith("http://127.0.0.1:")
    assert result._repr_html_().count("<img") == 2
    assert "a lighthouse at dusk" in result._repr_html_()
    assert [Path(p).parent.name for p in paths] == ["notebook-images"]
    assert all(Path(p).is_file() for p in paths)
    assert count == 12
    assert grid._repr_html_().count("<img") == 12
    assert "<h3>12 lakes</h3>" in grid._repr_html_()
    assert namespace["server"].stats.jobs_created == 14
