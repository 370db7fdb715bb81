"""Build the module notebooks from their one template.

Every module notebook has the same sections; only the default ``module`` parameter differs.
So ``notebooks/module_template.py`` (jupytext percent format) is the one source a reviewer
reads, and ``NN_<module_id>.ipynb`` are written from it, outputs empty, by ``make notebooks``.
A test checks that the committed notebooks are what the template gives.
"""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat

from .inputs import MODULES
from .paths import NOTEBOOKS_DIR

TEMPLATE = NOTEBOOKS_DIR / "module_template.py"


def module_notebook_name(index: int, module_id: str) -> str:
    """``01_prohibited_controlled_products.ipynb`` for the first module, and so on."""
    return f"{index:02d}_{module_id.replace('-', '_')}.ipynb"


def module_notebook(module_id: str, *, template: Path = TEMPLATE) -> nbformat.NotebookNode:
    """The template with ``module`` set to ``module_id`` in its parameters cell."""
    notebook = jupytext.read(template)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    lines = cell.source.splitlines()
    cell.source = "\n".join(f'module = "{module_id}"' if line.startswith("module = ") else line for line in lines)
    notebook.metadata.pop("jupytext", None)
    for index, cell in enumerate(notebook.cells):
        cell.id = f"{module_id[:40]}-{index:02d}"  # stable ids: rebuilding gives the same file
    return notebook


def build_module_notebooks(out_dir: Path = NOTEBOOKS_DIR, *, template: Path = TEMPLATE) -> list[Path]:
    """Write one notebook per module from the template; return their paths."""
    written = []
    for index, module_id in enumerate(MODULES, start=1):
        path = out_dir / module_notebook_name(index, module_id)
        nbformat.write(module_notebook(module_id, template=template), path)
        written.append(path)
    return written


if __name__ == "__main__":
    for built in build_module_notebooks():
        print(f"wrote {built.relative_to(NOTEBOOKS_DIR.parent)}")
