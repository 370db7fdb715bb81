"""The bad-input corpus: each file of ``tests/bad_inputs/`` changes one file of a copy of the
sample data and says the one line that must come back.

A case holds ``file`` (relative to the data folder), one or more of ``content`` (the file's
whole new text), ``set`` (dotted path -> value, in the parsed YAML), ``text`` (``old`` ->
``new`` replacements in the file's text, each of which must match) and ``encoding``
(how the file is written), then ``expect``: the message after the file's path, where
``{line}`` stands for any line or column number (they follow the sample's layout).
``max_seconds`` bounds how long the refusal may take.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from dsarisk.exceptions import InputError
from dsarisk.inputs import load_year
from dsarisk.methodology import load_methodology
from dsarisk.paths import DATA_DIR

CASES = sorted((Path(__file__).parent / "bad_inputs").glob("*.yaml"))


def _walk(data: Any, dotted: str) -> tuple[Any, Any]:
    """The container holding the last part of ``dotted``, and that part as a key or index."""
    *parents, last = [int(p) if p.isdigit() else p for p in dotted.split(".")]
    for part in parents:
        data = data[part]
    return data, last


def apply_case(spec: dict[str, Any], data_dir: Path) -> Path:
    """Write the case's change into ``data_dir``; return the changed file."""
    path = data_dir / spec["file"]
    text = spec.get("content", path.read_text(encoding="utf-8"))
    if "set" in spec:
        data = yaml.safe_load(text)
        for dotted, value in spec["set"].items():
            parent, key = _walk(data, dotted)
            parent[key] = value
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    for replacement in spec.get("text", []):
        assert replacement["old"] in text, f"the sample no longer holds {replacement['old']!r}"
        text = text.replace(replacement["old"], replacement["new"], 1)
    path.write_bytes(text.encode(spec.get("encoding", "utf-8")))
    return path


def load_changed(spec: dict[str, Any], data_dir: Path) -> None:
    """Read what the case changed the way dsarisk does: a methodology alone, else the year."""
    if spec["file"].startswith("methodology/"):
        load_methodology(data_dir / spec["file"])
    else:
        load_year(2024, data_dir=data_dir)


def copy_sample(root: Path) -> Path:
    """A copy of the sample data a test may change: both years, the methodologies and the
    statements of reasons a 2024 proxy counts."""
    for name in ("2023", "2024", "methodology", "sor"):
        shutil.copytree(DATA_DIR / name, root / name)
    return root


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_sample(tmp_path_factory.mktemp("sample"))


def test_the_corpus_covers_every_item_of_the_issue():
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_bad_input_is_one_line_naming_file_and_field(case: Path, sample: Path, tmp_path: Path):
    spec = yaml.safe_load(case.read_text(encoding="utf-8"))
    data_dir = tmp_path / "data"
    shutil.copytree(sample, data_dir)
    path = apply_case(spec, data_dir)
    started = time.perf_counter()
    with pytest.raises(InputError) as info:
        load_changed(spec, data_dir)
    seconds = time.perf_counter() - started
    expected = re.escape(f"{path}: {spec['expect']}").replace(re.escape("{line}"), r"\d+")
    assert re.fullmatch(expected, str(info.value)), str(info.value)
    assert seconds < spec.get("max_seconds", 60), f"took {seconds:.1f} s"
