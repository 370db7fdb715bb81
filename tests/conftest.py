"""Shared fixtures: the sample methodologies as files and as editable mappings."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from dsarisk.paths import METHODOLOGY_DIR


@pytest.fixture(scope="session")
def year2_dict() -> dict[str, Any]:
    return yaml.safe_load((METHODOLOGY_DIR / "year2.yaml").read_text())


@pytest.fixture
def year2_copy(year2_dict: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of the Year 2 methodology a test may change."""
    return copy.deepcopy(year2_dict)


@pytest.fixture
def write_yaml(tmp_path: Path):
    """Write a mapping as YAML into the test's folder and return the path."""

    def write(data: Any, name: str = "methodology.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


@pytest.fixture
def edit_module():
    """Change one module file of a copied data folder in place: edit(data_dir, module, change)."""

    def edit(data_dir: Path, module: str, change, *, year: str = "2024") -> Path:
        path = data_dir / year / f"{module}.yaml"
        data = yaml.safe_load(path.read_text())
        change(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return edit
