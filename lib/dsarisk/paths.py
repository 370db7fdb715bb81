"""Where things are. Two homes, never mixed:

* the tool's own resources (notebook templates, methodology presets, the Transparency Database
  mapping and enumerations) ship inside the installed package; an editable install of a
  checkout reads the checkout's own ``notebooks/`` and ``data/`` folders instead, which the
  wheel build maps into the package (``pyproject.toml``);
* the analyst's workspace (inputs, reports, caches) is the folder holding ``dsarisk.yaml``,
  found like git: the folder given to :func:`use_workspace` (``dsarisk --workspace DIR``),
  else ``$DSARISK_WORKSPACE`` (which that sets, so kernels and workers inherit it), else the
  nearest folder at or above the current one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .exceptions import InputError

MARKER = "dsarisk.yaml"
ENV_VAR = "DSARISK_WORKSPACE"
FOLDERS = {"data": "data", "reports": "reports", "build": "build"}

_PACKAGE = Path(str(resources.files(__package__)))
_CHECKOUT = _PACKAGE.parents[1]  # lib/dsarisk -> the checkout, in an editable install only


def _resource(packaged: str, checkout: str) -> Path:
    """A resource folder: inside the installed package, or the checkout's in an editable install."""
    inside = _PACKAGE / packaged
    return inside if inside.is_dir() else _CHECKOUT / checkout


def tool_notebooks() -> Path:
    """The notebook templates the tool runs."""
    return _resource("_notebooks", "notebooks")


def methodology_presets() -> Path:
    """The methodology files that ship with the tool (``year1.yaml``, ``year2.yaml``)."""
    return _resource("_methodology", "data/methodology")


def sor_mapping() -> Path:
    """The Transparency Database mapping to modules and its schema and enumerations."""
    return _resource("_sor", "data/sor")


class WorkspaceError(InputError):
    """No workspace, or a broken ``dsarisk.yaml``."""


@dataclass(frozen=True)
class Workspace:
    """An analyst's folder: ``dsarisk.yaml`` at its root, inputs under ``data``, reports under
    ``reports``, caches under ``build`` (folders relative to the root, as the marker says)."""

    root: Path
    platform: str | None
    data: Path
    reports: Path
    build: Path

    @property
    def cache(self) -> Path:
        return self.build / "cache"

    @property
    def notebooks(self) -> Path:
        """Where JupyterLab's copies of the notebooks live."""
        return self.root / "notebooks"

    @classmethod
    def read(cls, root: Path) -> Workspace:
        """The workspace whose marker is ``root / dsarisk.yaml``."""
        import yaml

        marker = root / MARKER
        try:
            config: Any = yaml.safe_load(marker.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise WorkspaceError(f"cannot read the workspace marker ({exc.strerror})", file=marker) from None
        except yaml.YAMLError as exc:
            raise WorkspaceError(f"not valid YAML: {str(exc).splitlines()[0]}", file=marker) from None
        folders = config.get("folders", {}) if isinstance(config, dict) else None
        if not isinstance(folders, dict) or set(folders) - set(FOLDERS):
            raise WorkspaceError(f"expected a mapping with 'platform' and 'folders' ({', '.join(FOLDERS)})",
                                 file=marker, field="folders")
        for key, value in folders.items():
            if not isinstance(value, str) or not value.strip() or Path(value).is_absolute():
                raise WorkspaceError("must be a folder relative to the workspace", file=marker, field=f"folders.{key}")
        chosen = {key: root / folders.get(key, default) for key, default in FOLDERS.items()}
        platform = config.get("platform")
        return cls(root=root, platform=None if platform is None else str(platform), **chosen)


def find_workspace(start: Path | None = None) -> Workspace | None:
    """The workspace in use, or None: ``$DSARISK_WORKSPACE``, else the nearest folder at or
    above ``start`` (the current folder) holding ``dsarisk.yaml``."""
    chosen = os.environ.get(ENV_VAR)
    if chosen:
        return Workspace.read(Path(chosen))
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / MARKER).is_file():
            return Workspace.read(folder)
    return None


def workspace() -> Workspace:
    """The workspace in use; a :class:`WorkspaceError` saying what to do when there is none."""
    found = find_workspace()
    if found is None:
        raise WorkspaceError(f"no dsarisk workspace in {Path.cwd()} or any folder above (no {MARKER}): "
                             "create one with 'dsarisk init DIR', or name one with '--workspace DIR'")
    return found


def use_workspace(folder: str | Path) -> Workspace:
    """Make ``folder`` the workspace of this process and of every process it starts."""
    root = Path(folder).resolve()
    if not (root / MARKER).is_file():
        raise WorkspaceError(f"not a dsarisk workspace (no {MARKER}): create one with 'dsarisk init {folder}'",
                             file=root)
    found = Workspace.read(root)
    os.environ[ENV_VAR] = str(root)
    return found


def data_dir() -> Path:
    """The workspace's inputs: ``<year>/`` folders and ``methodology/``."""
    return workspace().data


def reports_dir() -> Path:
    return workspace().reports


def cache_dir(name: str) -> Path | None:
    """The workspace's cache folder ``name``; None outside any workspace (nothing is cached)."""
    found = find_workspace()
    return None if found is None else found.cache / name


def methodology_dirs() -> list[Path]:
    """Where a methodology given by bare name is looked up: the workspace's own copies first,
    then the tool's presets."""
    found = find_workspace()
    return ([found.data / "methodology"] if found else []) + [methodology_presets()]


NOTEBOOKS_DIR = tool_notebooks()
METHODOLOGY_DIR = methodology_presets()
_WORKSPACE_NAMES = {"PROJECT_ROOT": "root", "DATA_DIR": "data", "REPORTS_DIR": "reports", "CACHE_DIR": "cache"}


def __getattr__(name: str) -> Path:
    """The current workspace's folders under their former constant names, looked up when
    asked, for scripts and tests; library code calls the functions above."""
    if name in _WORKSPACE_NAMES:
        return getattr(workspace(), _WORKSPACE_NAMES[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
