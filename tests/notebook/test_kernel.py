"""``examples/notebook.py`` in a real Jupyter kernel (ipykernel, driven by nbclient).

``tests/examples/test_examples_notebook.py`` runs the cells in this process the way IPython
would; this runs them where users do: a kernel with its own event loop, cells sent one by one,
widgets and rich outputs as the kernel renders them. Skipped when nbclient is not installed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "examples" / "notebook.py"
WIDGET = "application/vnd.jupyter.widget-view+json"

# A session opened in one cell and closed in a later one: the kernel runs each cell in a task of
# its own, which is what broke before aclose() worked from any task.
ACROSS_CELLS = [
    "import radient_async\n"
    "session = await radient_async.Session('notebook-key', server.base_url).open()",
    "handle = await session.submit('across cells')\nresult = await handle\nlen(result.images)",
    "await session.aclose()\n"
    "try:\n    await session.submit('after close')\n"
    "except radient_async.SessionClosedError:\n    refused = True\n"
    "refused",
]


def cells_of(source: str) -> list[Any]:
    """The jupytext percent-format file as notebook cells."""
    cells: list[Any] = []
    kind, lines = None, []
    for line in [*source.splitlines(), "# %%"]:
        if line.startswith("# %%"):
            if kind == "code" and any(lines):
                cells.append(nbformat.v4.new_code_cell("\n".join(lines).strip()))
            elif kind == "markdown":
                text = "\n".join(entry.removeprefix("# ").removeprefix("#") for entry in lines)
                cells.append(nbformat.v4.new_markdown_cell(text.strip()))
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        elif kind is not None:
            lines.append(line)
    return cells


def outputs(cell: Any) -> list[dict[str, Any]]:
    return [dict(output) for output in cell.get("outputs", [])]


def text_of(cell: Any) -> str:
    return json.dumps(outputs(cell))


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    cells = cells_of(NOTEBOOK.read_text())
    last_code = max(i for i, cell in enumerate(cells) if cell.cell_type == "code")
    # the across-cells check runs before the notebook's last cell (which stops the server)
    extra = [nbformat.v4.new_code_cell(code) for code in ACROSS_CELLS]
    notebook = nbformat.v4.new_notebook(cells=cells[:last_code] + extra + cells[last_code:])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    workdir = tmp_path_factory.mktemp("notebook")
    client = nbclient.NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
        extra_arguments=[f"--IPKernelApp.exec_lines=import sys; sys.path.insert(0, {str(ROOT)!r})"],
    )
    client.execute()
    return notebook


def code_cells(notebook: Any) -> list[Any]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_every_cell_runs_without_an_error_or_a_warning(executed: Any) -> None:
    for cell in code_cells(executed):
        kinds = {output["output_type"] for output in outputs(cell)}
        assert "error" not in kinds, cell.source
        streams = [o for o in outputs(cell) if o["output_type"] == "stream"]
        assert not [o for o in streams if o["name"] == "stderr"], (cell.source, streams)


def test_the_progress_bar_is_a_widget_not_a_warning(executed: Any) -> None:
    (cell,) = [c for c in code_cells(executed) if "progress=True" in c.source]
    assert WIDGET in text_of(cell)  # tqdm's ipywidgets bar, as the progress extra promises
    assert "IProgress not found" not in text_of(cell)


def test_the_gallery_embeds_its_images(executed: Any) -> None:
    cell = next(c for c in code_cells(executed) if "gallery(" in c.source)
    html = [o["data"]["text/html"] for o in outputs(cell) if "text/html" in o.get("data", {})]
    assert html
    assert "data:image/" in html[0]  # thumbnails that outlive the server
    assert "127.0.0.1" not in html[0]  # not the temporary server's URLs


def test_a_session_opened_in_one_cell_closes_in_a_later_one(executed: Any) -> None:
    sources = [cell.source for cell in code_cells(executed)]
    first = sources.index(ACROSS_CELLS[0])
    cells = code_cells(executed)[first : first + 3]
    assert "error" not in text_of(cells[0]) + text_of(cells[1]) + text_of(cells[2])
    results = [o["data"]["text/plain"] for c in cells[1:] for o in outputs(c) if "data" in o]
    assert results == ["1", "True"]
