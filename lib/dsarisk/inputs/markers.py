"""The TO UPDATE scan: a scaffolded year fails with the full list of what still needs a value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..exceptions import InputError

TO_UPDATE = "TO UPDATE"


def _marked_fields(node: Any, where: str = "") -> list[str]:
    """Dotted paths of every value still marked TO UPDATE."""
    if isinstance(node, str):
        return [where] if node.strip().upper() == TO_UPDATE else []
    if isinstance(node, dict):
        return [f for key, value in node.items() for f in _marked_fields(value, f"{where}.{key}" if where else str(key))]
    if isinstance(node, list):
        return [f for i, value in enumerate(node) for f in _marked_fields(value, f"{where}[{i}]")]
    return []


def refuse_values_to_update(year_dir: Path, parsed: dict[str, Any]) -> None:
    """A scaffolded year fails with the full list of what still needs a value, never with
    last year's numbers."""
    pending = []
    for name, data in parsed.items():
        fields = _marked_fields(data)
        pending += [f"{name}: {', '.join(fields)}"] if fields else []
    if pending:
        count = sum(entry.count(",") + 1 for entry in pending)
        raise InputError(f"{count} value(s) still marked {TO_UPDATE}: " + "; ".join(pending), file=year_dir)
