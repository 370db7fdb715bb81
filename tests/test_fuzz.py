"""Mutations of the sample's YAML: every outcome is a valid result or one InputError line.

Hypothesis changes one place of one 2024 file or of the methodology, in a copy of the sample (a value of another
type, a non-finite or negative number, a deleted key, a duplicated key, deep nesting), then
loads and assesses the year. Either an ``InputError`` comes back as one line naming the
file and a field (or a YAML line), or the year is valid: its ratings JSON is strict (no
NaN), and the value written is the value loaded (``true`` read as 1 or ``'4'`` as 4 is a
rating silently changed).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dsarisk.assess import assess_year
from dsarisk.exceptions import InputError
from dsarisk.inputs import load_year
from dsarisk.paths import DATA_DIR

from .test_bad_inputs import copy_sample

FILES = ["2024/assessment.yaml", *(f"2024/{m}.yaml" for m in load_year(2024).modules), "methodology/year2.yaml"]
DEEP: list[Any] = []
for _ in range(150):
    DEEP = [DEEP]


def _paths(node: Any, where: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a parsed file, as key/index tuples (the root excluded)."""
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    return [p for key, value in children for p in [(*where, key), *_paths(value, (*where, key))]]


SAMPLE = {name: (DATA_DIR / name).read_text(encoding="utf-8") for name in FILES}
PATHS = {name: _paths(yaml.safe_load(text)) for name, text in SAMPLE.items()}

values = st.one_of(
    st.booleans(), st.none(), st.sampled_from([math.nan, math.inf, -math.inf, -1, 0, 150, 10**15, 2.5]),
    st.integers(-5, 10), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["4", "", "TO UPDATE", "1e3", "Managed", "x" * 300, "2024-01-01"]), st.text(max_size=4),
    st.lists(st.integers(0, 3), max_size=2), st.dictionaries(st.sampled_from(["value", "confidential", "id"]),
                                                            st.integers(0, 3), max_size=2),
    st.just(DEEP),
)


@st.composite
def mutations(draw: st.DrawFn) -> tuple[str, str, tuple[Any, ...], Any]:
    name = draw(st.sampled_from(FILES))
    action = draw(st.sampled_from(["set", "set", "set", "delete", "duplicate"]))
    path = draw(st.sampled_from(PATHS[name]))
    return name, action, path, draw(values) if action == "set" else None


def _mutated(text: str, action: str, path: tuple[Any, ...], value: Any) -> str:
    if action == "duplicate":  # a top-level key given again at the end
        return text + f"{path[0]}: 1\n"
    data = yaml.safe_load(text)
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    if action == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _same(written: Any, loaded: Any) -> bool:
    """Whether ``loaded`` holds exactly what was ``written`` (a number read as a confidential
    value, an ISO date read as a date)."""
    if isinstance(loaded, dict) and set(loaded) == {"value", "confidential"} and not isinstance(written, dict):
        return _same(written, loaded["value"])
    if isinstance(written, bool) or isinstance(loaded, bool):
        return type(written) is type(loaded) and written == loaded
    if isinstance(loaded, dt.date) and isinstance(written, str):
        return loaded.isoformat() == written
    if isinstance(written, list) and isinstance(loaded, list):
        return len(written) == len(loaded) and all(map(_same, written, loaded))
    if isinstance(written, dict) and isinstance(loaded, dict):
        return all(_same(v, loaded.get(k)) for k, v in written.items())
    return bool(written == loaded)  # NaN is never equal: a NaN loaded fails here


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_sample(tmp_path_factory.mktemp("fuzz"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=mutations())
def test_a_mutated_sample_is_valid_or_one_line(data_dir: Path, mutation: tuple[str, str, tuple[Any, ...], Any]):
    name, action, path, value = mutation
    target = data_dir / name
    target.write_text(_mutated(SAMPLE[name], action, path, value), encoding="utf-8")
    try:
        try:
            inputs = load_year(2024, data_dir=data_dir, methodology=data_dir / "methodology/year2.yaml")
            results = assess_year(inputs)
        except InputError as exc:
            message = str(exc)
            event("refused")
            assert "\n" not in message and "Traceback" not in message
            assert Path(name).name in message, message  # the file, or the year folder's list of fields to update
            assert ("field '" in message or "malformed YAML at line" in message
                    or f"{Path(name).name}: " in message.split("TO UPDATE", 1)[-1]), message
            return
        event("valid")
        for assessment in results.values():
            for public in (False, True):
                json.dumps(assessment.to_json(public=public), allow_nan=False)
        if action == "set" and not name.startswith("methodology/"):  # labels there are canonicalised
            loaded = (inputs.assessment if name == "2024/assessment.yaml" else inputs.modules[name[5:-5]]).model_dump()
            for key in path:
                loaded = loaded[key]
            if not (path[:2] == ("probability", "proxies") and len(path) > 3 and path[3] in ("incidents", "source")):
                assert _same(value, loaded), (path, value, loaded)
    finally:
        target.write_text(SAMPLE[name], encoding="utf-8")
