"""``dsarisk init``: a new workspace for a platform's assessment, kept apart from the tool.

The workspace holds everything a platform's risk team owns: ``dsarisk.yaml`` (the marker),
a copy of the methodology (self-contained, auditable), the year's ``assessment.yaml`` with
the module list, one module file per module with every value ``TO UPDATE`` (so that
``dsarisk run`` lists what is missing), a ``.gitignore`` and a short README. ``dsarisk lab``
adds copies of the tool's notebooks, set to the workspace's latest year.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from string import Template
from typing import Any

import yaml

from .exceptions import InputError
from .inputs import TO_UPDATE, available_years
from .methodology import Methodology, load_methodology, read_yaml, resolve_methodology_path
from .paths import FOLDERS, MARKER, Workspace, tool_notebooks

EXAMPLE_MODULES = [{"id": "example-risk", "title": "Example risk", "short": "EX"}]
MODULE_KEYS = {"id", "title", "short"}
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")  # a module id is also a file name
MAX_MODULES = 60
GITIGNORE = "# written by dsarisk, never committed\n/reports/\n/build/\n/notebooks/\n.ipynb_checkpoints/\n"
README = Path(__file__).parent / "templates" / "workspace" / "README.md"


def _text(value: Any, *, file: Path | str | None, field: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip() or "\n" in value or len(value) > limit:
        raise InputError(f"must be one line of text of at most {limit} characters", file=file, field=field)
    return value.strip()


def read_module_list(path: str | Path) -> list[dict[str, str]]:
    """The modules a ``--modules`` file declares: a YAML list of ``{id, title, short}``."""
    entries = read_yaml(Path(path), InputError)
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_MODULES:
        raise InputError(f"expected a YAML list of 1 to {MAX_MODULES} modules, each {{id, title, short}}", file=path)
    modules = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or set(entry) - MODULE_KEYS or "id" not in entry or "title" not in entry:
            raise InputError("expected {id, title, short}", file=path, field=f"[{i}]")
        module_id = entry["id"]
        if not isinstance(module_id, str) or not SLUG.fullmatch(module_id) or len(module_id) > 80:
            raise InputError(f"'{module_id}' is not an id (lower-case words joined by '-')", file=path, field=f"[{i}].id")
        module = {"id": module_id, "title": _text(entry["title"], file=path, field=f"[{i}].title", limit=200)}
        if "short" in entry:
            module["short"] = _text(entry["short"], file=path, field=f"[{i}].short", limit=16)
        modules.append(module)
    for key in ("id", "short"):
        seen = [m[key] for m in modules if key in m]
        twice = sorted({value for value in seen if seen.count(value) > 1})
        if twice:
            raise InputError(f"{key}(s) declared more than once: {', '.join(twice)}", file=path)
    return modules


def _module_file(module: dict[str, str], method: Methodology) -> str:
    header = (f"# {module['title']}: replace every {TO_UPDATE}; `dsarisk run` lists the ones left.\n"
              f"# A judged rating is {{level, rationale}}; the levels under {method.name}:\n"
              f"#   probability:   {', '.join(method.probability.labels)}\n"
              f"#   severity:      {', '.join(method.severity.labels)}\n"
              f"#   effectiveness: {', '.join(method.effectiveness.labels)}\n")
    body = {"module": module["id"], "title": module["title"], "definition": TO_UPDATE,
            **{rating: {"level": TO_UPDATE, "rationale": TO_UPDATE}
               for rating in ("probability", "severity", "effectiveness")}}
    return header + yaml.safe_dump(body, sort_keys=False, allow_unicode=True)


def init_workspace(folder: str | Path, *, platform: str, year: int, methodology: str | Path,
                   modules: str | Path | None = None) -> Path:
    """Scaffold a workspace in ``folder`` (which may exist, holding none of the files written).

    Parameters
    ----------
    folder : str or Path
    platform : str
        The platform assessed, as the report names it.
    year : int
        The first assessment year.
    methodology : str or Path
        A preset's name (``year2``) or a methodology file; validated, then copied.
    modules : str or Path, optional
        A YAML list of ``{id, title, short}``; one example module without it.

    Returns
    -------
    Path
        The workspace's root.

    Raises
    ------
    InputError
        For a bad argument, or when the folder holds a workspace or any file this would write.
    """
    root = Path(folder).resolve()
    platform = _text(platform, file=None, field="--platform", limit=200)
    if not 1000 <= year <= 9999:
        raise InputError(f"{year} is not a four-digit year", field="--year")
    source = resolve_methodology_path(methodology)
    method = load_methodology(source)
    declared = read_module_list(modules) if modules is not None else EXAMPLE_MODULES
    files = {
        MARKER: ("# A dsarisk workspace: every dsarisk command run in this folder or below uses it.\n"
                 + yaml.safe_dump({"platform": platform, "folders": FOLDERS}, sort_keys=False, allow_unicode=True)),
        f"data/methodology/{source.stem}.yaml": source.read_text(encoding="utf-8"),
        f"data/{year}/assessment.yaml": (
            f"# {platform}: assessment {year}. Replace every {TO_UPDATE}; `dsarisk run` lists the ones left.\n"
            + yaml.safe_dump({"platform": platform, "year": year, "period": {"start": TO_UPDATE, "end": TO_UPDATE},
                              "methodology": source.stem, "previous_year": None, "modules": declared},
                             sort_keys=False, allow_unicode=True)),
        **{f"data/{year}/{m['id']}.yaml": _module_file(m, method) for m in declared},
        ".gitignore": GITIGNORE,
        "README.md": Template(README.read_text(encoding="utf-8")).substitute(
            platform=platform, year=year, method=source.stem),
    }
    if (root / MARKER).exists():
        raise InputError("a dsarisk workspace exists here already; dsarisk init never overwrites one", file=root / MARKER)
    present = [name for name in files if (root / name).exists()]
    if present:
        raise InputError(f"would overwrite {', '.join(present)}; choose an empty folder", file=root)
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.init-", dir=root.parent))
    staging.chmod(0o755)  # mkdtemp's private mode would carry over to the workspace
    try:  # written aside first, so a failure leaves nothing half made
        for name, text in files.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_text(text, encoding="utf-8")
        if not root.exists():
            staging.rename(root)
        else:
            for entry in staging.iterdir():
                _merge(entry, root / entry.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root


def _merge(entry: Path, target: Path) -> None:
    """Move ``entry`` to ``target``, into an existing folder file by file (none exists: checked)."""
    if entry.is_dir() and target.is_dir():
        for child in entry.iterdir():
            _merge(child, target / child.name)
    else:
        entry.rename(target)


def prepare_notebooks(workspace: Workspace) -> list[Path]:
    """Copy each of the tool's notebooks that ``workspace/notebooks/`` lacks (an analyst's
    copy is never replaced), its ``year`` parameter set to the workspace's latest year so that
    it runs top to bottom as it opens. Returns the copies made."""
    import nbformat

    target = workspace.notebooks
    if target.resolve() == tool_notebooks().resolve():
        return []  # the tool's own checkout is its sample's workspace
    years = available_years(workspace.data)
    copies = []
    for source in sorted(tool_notebooks().glob("*.ipynb")):
        if (target / source.name).exists():
            continue
        notebook = nbformat.read(source, as_version=4)
        notebook.metadata.pop("jupytext", None)  # a copy, not a paired source: no .py written beside it
        for cell in notebook.cells:
            if years and "parameters" in cell.metadata.get("tags", []):
                cell.source = re.sub(r"(?m)^year = .*$", f"year = {years[-1]}", cell.source)
        target.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, target / source.name)
        copies.append(target / source.name)
    return copies
