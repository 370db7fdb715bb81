"""Checks that span two years: this year's commitments against last year's roadmap."""

from __future__ import annotations

from pathlib import Path

from ..exceptions import InputError
from ..yamlio import read_yaml
from .schema import ModuleInput

def previous_roadmap(root: Path, previous_year: int | None, module: str) -> list[str] | None:
    """Ids of the previous year's roadmap items for a module, or None without that year."""
    path = root / str(previous_year) / f"{module}.yaml"
    if previous_year is None or not path.is_file():
        return None
    data = read_yaml(path, InputError, module=module)
    if not isinstance(data, dict):
        raise InputError("last year's module file must be a YAML mapping", file=path, module=module)
    roadmap = data.get("roadmap") or []
    if not isinstance(roadmap, list):
        raise InputError("last year's roadmap must be a list", file=path, module=module, field="roadmap")
    return [str(item.get("id")) for item in roadmap if isinstance(item, dict)]


def check_commitments(item: ModuleInput, path: Path, previous_roadmap: list[str] | None) -> None:
    measures = {m.id for _, m in item.measures}
    for i, commitment in enumerate(item.commitments):
        where = f"commitments[{i}] ({commitment.id})"
        if commitment.status is None:
            raise InputError(f"commitment '{commitment.id}' has no status (delivered, in progress, delayed, dropped)",
                             file=path, module=item.module, field=f"{where}.status")
        unknown = [m for m in commitment.implemented_by if m not in measures]
        if unknown:
            raise InputError(f"implemented_by names no questionnaire measure: {', '.join(unknown)}",
                             file=path, module=item.module, field=f"{where}.implemented_by")
    if previous_roadmap is not None:
        missing = [rid for rid in previous_roadmap if rid not in {c.id for c in item.commitments}]
        if missing:
            raise InputError(f"last year's roadmap item(s) {', '.join(missing)} have no commitment entry",
                             file=path, module=item.module, field="commitments")
