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


@pytest.mark.parametrize("name", MODULE_NOTEBOOKS + [f"{n}.ipynb" for n in PAIRED])
def test_committed_notebooks_carry_no_outputs_and_declare_parameters(name):
    notebook = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in notebook.cells if c.cell_type == "code")
    parameters = papermill.inspect_notebook(str(NOTEBOOKS_DIR / name))
    if name in MODULE_NOTEBOOKS:
        assert {"year", "module", "data_dir", "methodology", "public", "output_dir"} <= set(parameters)
        assert parameters["module"]["default"].strip('"') == name[3:-6].replace("_", "-")
    else:
        assert parameters
