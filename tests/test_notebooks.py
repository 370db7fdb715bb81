"""The committed notebooks: paired with their sources, stripped, with parameters papermill sees."""

from __future__ import annotations

import jupytext
import nbformat
import papermill
import pytest

from dsarisk.paths import NOTEBOOKS_DIR
from dsarisk.pipeline import MODULE_NOTEBOOK

PAIRED = ["00_summary", MODULE_NOTEBOOK.removesuffix(".ipynb"), "80_transparency_database", "90_explore"]


def _cells(notebook) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", []))) for c in notebook.cells]


@pytest.mark.parametrize("name", PAIRED)
def test_paired_notebooks_are_in_sync(name):
    text = jupytext.read(NOTEBOOKS_DIR / f"{name}.py")
    notebook = nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
    assert _cells(notebook) == _cells(text), "run `make notebooks`"


def test_no_notebook_is_generated_per_module():
    """One template serves every module: no copy to keep in sync, none named after a module."""
    assert sorted(p.stem for p in NOTEBOOKS_DIR.glob("*.ipynb")) == sorted(PAIRED)


# every parameter a notebook declares and its default, as papermill sees them (the pipeline
# injects year, data_dir, public, module and output_dir; a reader runs the defaults, and no
# default names a module of the sample: the first module of the year is taken)
PARAMETERS = {
    "00_summary": {"year": "2024", "data_dir": "None", "methodology": "None", "public": "False"},
    "10_module": {"year": "2024", "module": "None", "data_dir": "None", "methodology": "None", "public": "False",
                  "output_dir": "None"},
    "80_transparency_database": {"sor_path": "None", "platform": '"Sample Marketplace"', "module": "None",
                                 "engine": '"duckdb"'},
    "90_explore": {"year": "2024", "module": "None", "data_dir": "None", "methodology": "None",
                   "interactive": "None"},
}


@pytest.mark.parametrize("name", PAIRED)
def test_committed_notebooks_carry_no_outputs_and_declare_parameters(name):
    notebook = nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in notebook.cells if c.cell_type == "code")
    parameters = papermill.inspect_notebook(str(NOTEBOOKS_DIR / f"{name}.ipynb"))
    assert {key: p["default"] for key, p in parameters.items()} == PARAMETERS[name]
