"""The committed notebooks: generated from their sources, stripped, with parameters papermill sees."""

from __future__ import annotations

import jupytext
import nbformat
import papermill
import pytest

from dsarisk.inputs import MODULES
from dsarisk.notebooks import module_notebook, module_notebook_name
from dsarisk.paths import NOTEBOOKS_DIR

PAIRED = ["00_summary", "80_transparency_database", "90_explore"]
MODULE_NOTEBOOKS = [module_notebook_name(i, m) for i, m in enumerate(MODULES, start=1)]


def _cells(notebook) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", []))) for c in notebook.cells]


@pytest.mark.parametrize("index_module", list(enumerate(MODULES, start=1)), ids=list(MODULES))
def test_module_notebooks_are_what_the_template_gives(index_module):
    index, module_id = index_module
    committed = nbformat.read(NOTEBOOKS_DIR / module_notebook_name(index, module_id), as_version=4)
    assert _cells(committed) == _cells(module_notebook(module_id)), "run `make notebooks`"


@pytest.mark.parametrize("name", PAIRED)
def test_paired_notebooks_are_in_sync(name):
    text = jupytext.read(NOTEBOOKS_DIR / f"{name}.py")
    notebook = nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
    assert _cells(notebook) == _cells(text), "run `make notebooks`"


# every parameter a notebook declares and its default, as papermill sees them (the pipeline
# injects year, data_dir, public, module and output_dir; a reader runs the defaults)
PARAMETERS = {
    "00_summary.ipynb": {"year": "2024", "data_dir": "None", "methodology": "None", "public": "False"},
    "80_transparency_database.ipynb": {"sor_path": "None", "platform": '"Sample Marketplace"',
                                       "module": '"prohibited-controlled-products"', "engine": '"duckdb"'},
    "90_explore.ipynb": {"year": "2024", "module": '"consumer-protection"', "data_dir": "None", "methodology": "None",
                         "interactive": "True"},
    **{name: {"year": "2024", "module": f'"{module_id}"', "data_dir": "None", "methodology": "None",
              "public": "False", "output_dir": "None"} for name, module_id in zip(MODULE_NOTEBOOKS, MODULES)},
}


@pytest.mark.parametrize("name", MODULE_NOTEBOOKS + [f"{n}.ipynb" for n in PAIRED])
def test_committed_notebooks_carry_no_outputs_and_declare_parameters(name):
    notebook = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in notebook.cells if c.cell_type == "code")
    parameters = papermill.inspect_notebook(str(NOTEBOOKS_DIR / name))
    assert {key: p["default"] for key, p in parameters.items()} == PARAMETERS[name]
