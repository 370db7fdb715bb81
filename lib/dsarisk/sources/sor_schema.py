"""The Transparency Database's schema as data: its versions, enumerations and headings
(``data/sor/schema.yaml`` says which entry of the Commission's own file applies to what), and
the categories of both versions mapped to risk modules (``data/sor/categories.yaml``)."""

from __future__ import annotations

import datetime as dt
import json
from functools import cache
from typing import Any

from .. import paths
from ..exceptions import InputError
from ..yamlio import read_yaml

SOR_DIR = paths.sor_mapping()


class SorError(InputError):
    """A statement-of-reasons file that cannot be read at all."""


@cache
def schema() -> dict[str, Any]:
    return read_yaml(SOR_DIR / "schema.yaml", SorError)


@cache
def enumerations() -> dict[str, Any]:
    """The Commission's enumerations and column headings (a verbatim copy, as data)."""
    path = SOR_DIR / schema()["enumerations"]
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SorError(f"unreadable enumerations ({exc})", file=path) from None


@cache
def categories() -> dict[str, dict[str, str | None]]:
    return read_yaml(SOR_DIR / "categories.yaml", SorError)


def category_modules() -> dict[str, str | None]:
    """Every known category of either version and its module."""
    return {**categories()["version_1"], **categories()["version_2"]}


VERSIONS = ("v1", "v2")
DUMPS = ("full", "light")


def allowed(column: str, version: str) -> list[str]:
    """The values a column (or each item of an array column) may hold in a schema version."""
    spec = schema()
    enums = enumerations()[spec["versions"][version]["enumerations"]]
    entry = enums[spec["values"].get(column) or spec["arrays"][column]]
    return list(entry.get("stored_values", entry))


def eu_codes() -> list[str]:
    """The EU and EEA country codes a territorial scope may list."""
    return list(enumerations()[schema()["territorial_scope"]])


def headings(version: str, dump: str) -> list[str]:
    """The column headings of a published dump of one schema version, full or light."""
    return list(enumerations()[schema()["versions"][version]["headings"][dump]])


def version_of(day: dt.date) -> str:
    """The schema version in force on ``day``."""
    return "v2" if day >= schema()["versions"]["v2"]["from"] else "v1"



def check_header(columns: list[str], origin: str) -> tuple[str, str]:
    """Match a part's header with the Commission's headings; return (schema version, full or
    light). Parquet parts may order their columns differently: only the set must match."""
    for version in VERSIONS:
        for dump in DUMPS:
            if set(columns) == set(headings(version, dump)) and len(columns) == len(headings(version, dump)):
                return version, dump
    known = set(headings("v2", "full")) | set(headings("v1", "full"))
    missing = [c for c in schema()["required"] if c not in columns]
    if missing:
        raise SorError(f"missing column(s) {', '.join(missing)}", file=origin)
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise SorError(f"unknown column(s) {', '.join(unknown)} (not in data/sor/{schema()['enumerations']})",
                       file=origin)
    raise SorError(f"the {len(columns)} columns match no published heading (schema v1 or v2, full or light)",
                   file=origin)
