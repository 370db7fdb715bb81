"""The yearly cycle: start next year from this one, and say what changed since last year.

:func:`new_year` scaffolds ``data/<year>/`` from the previous year: structure, registry,
questionnaire and rationales carried over, every figure of the period marked ``TO UPDATE``
(a run then fails listing them all), last year's roadmap turned into commitments to report on.
:func:`changes_since` compares two loaded years: maturity moves, measures added or removed,
proxies that changed by more than a factor.
"""

from __future__ import annotations

import copy
import datetime as dt
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .exceptions import InputError
from .inputs import TO_UPDATE, ModuleInput
from .inputs.load import validated_assessment
from .inputs.markers import refuse_values_to_update
from .inputs.schema import validated
from .labels import canonical_label
from . import paths
from .methodology import load_methodology, named_methodology
from .yamlio import read_yaml
from .values import Value

PROXY_FIGURES = ("incidents", "volume", "rate")


def _to_update(value: Any) -> Any:
    """The marker in place of a figure, keeping its confidentiality flag."""
    if isinstance(value, dict) and "value" in value:
        return {**value, "value": TO_UPDATE}
    return TO_UPDATE


def _next_period(period: dict[str, Any]) -> dict[str, str]:
    def shifted(day: Any) -> str:
        date = day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day))
        try:
            return date.replace(year=date.year + 1).isoformat()
        except ValueError:  # 29 February
            return (date.replace(day=28, year=date.year + 1)).isoformat()

    return {"start": shifted(period["start"]), "end": shifted(period["end"])}


def scaffold_module(data: dict[str, Any]) -> dict[str, Any]:
    """Next year's module file from this year's: figures cleared, roadmap -> commitments."""
    module = copy.deepcopy(data)
    rated = [module, module.get("post_control") or {}]
    for probability in (part.get("probability") or {} for part in rated):
        if "level" in probability:  # a judged level is a judgement of the period, like a figure
            probability["level"] = TO_UPDATE
    proxies = [proxy for part in rated for proxy in (part.get("probability") or {}).get("proxies", [])]
    for proxy in proxies:
        for key in PROXY_FIGURES:
            if key in proxy:
                proxy[key] = _to_update(proxy[key])
        proxy["period"] = {"start": TO_UPDATE, "end": TO_UPDATE}
        if "sor" in proxy:
            proxy["sor"].update(start=TO_UPDATE, end=TO_UPDATE)
    for factor in module.get("factors", []):
        for figure in factor.get("figures", []):
            figure["value"] = _to_update(figure["value"])
            for key in ("period", "denominator", "stated_pct"):
                if key in figure:
                    figure[key] = {"start": TO_UPDATE, "end": TO_UPDATE} if key == "period" else _to_update(figure[key])
    module["commitments"] = [{"id": item["id"], "measure": item["measure"], "art35": item["art35"],
                              "status": TO_UPDATE, "evidence": TO_UPDATE, "implemented_by": []}
                             for item in data.get("roadmap", [])]
    module["roadmap"] = []
    module["published"] = {}
    module["change_since_previous"] = {"kind": TO_UPDATE, "explanation": TO_UPDATE}
    return module


def _refuse_unfilled(origin: Path, source: int, parsed: dict[str, Any]) -> None:
    try:
        refuse_values_to_update(origin, parsed)
    except InputError as exc:
        raise InputError(f"year {source} is not filled in, so its roadmap would be lost: {exc.message}",
                         file=exc.file) from None


def _read_source(origin: Path, source: int) -> dict[str, Any]:
    """The parsed files of the source year's assessment and modules, by file name, once they
    are known to be filled in and valid: an unfilled year would lose its commitments."""
    assessment_path = origin / "assessment.yaml"
    parsed = {"assessment.yaml": read_yaml(assessment_path, InputError)}
    _refuse_unfilled(origin, source, parsed)  # the assessment alone first: a TO UPDATE period fails validation
    assessment = validated_assessment(parsed["assessment.yaml"], assessment_path, source)
    for module_id in assessment.module_ids:
        parsed[f"{module_id}.yaml"] = read_yaml(origin / f"{module_id}.yaml", InputError, module=module_id)
    _refuse_unfilled(origin, source, parsed)
    for module_id in assessment.module_ids:
        validated(ModuleInput, parsed[f"{module_id}.yaml"], origin / f"{module_id}.yaml", module_id)
    return parsed


def new_year(year: int, *, source: int, data_dir: str | Path | None = None,
             methodology: str | None = None) -> Path:
    """Scaffold ``<data_dir>/<year>/`` from ``<data_dir>/<source>/``; refuse to overwrite.

    Returns the new folder. Written to a temporary folder first, so a failure leaves nothing.
    """
    root = Path(data_dir) if data_dir is not None else paths.data_dir()
    origin, target = root / str(source), root / str(year)
    latest = dt.date.today().year + 1
    if not source < year <= latest:
        raise InputError(f"the new year must follow {source} and be at most {latest} (next year), not {year}",
                         field="year")
    if target.exists():
        raise InputError(f"year {year} exists already; remove it first if you mean to start over", file=target)
    if not (origin / "assessment.yaml").is_file():
        raise InputError(f"no assessment for year {source} to start from", file=origin / "assessment.yaml")
    parsed = _read_source(origin, source)
    assessment = parsed.pop("assessment.yaml")
    assessment.update(year=year, previous_year=source, period=_next_period(assessment["period"]))
    if methodology:  # checked now: the new year would fail on it only once filled in
        load_methodology(named_methodology(methodology, base=origin, field="--methodology"))
        assessment["methodology"] = methodology
    header = (f"# Scaffolded from {source} by `dsarisk new-year` on {dt.date.today()}: every {TO_UPDATE} needs\n"
              f"# a value of the new period before `dsarisk run --year {year}` will run.\n")
    staging = Path(tempfile.mkdtemp(prefix=f".{year}.new-", dir=root))
    try:
        (staging / "assessment.yaml").write_text(header + yaml.safe_dump(assessment, sort_keys=False), encoding="utf-8")
        for name, data in parsed.items():
            (staging / name).write_text(
                header + yaml.safe_dump(scaffold_module(data), sort_keys=False, width=100, allow_unicode=True),
                encoding="utf-8")
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


# -- what changed since last year ----------------------------------------------------------
@dataclass(frozen=True)
class Change:
    """One difference between two years of a module."""

    module: str
    kind: str
    item: str
    before: str | Value | None
    after: str | Value | None


def changes_since(before: ModuleInput, after: ModuleInput, *, maturity_levels: list[str],
                  factor: float) -> list[Change]:
    """Maturity moves, measures added or removed, and proxies that changed by more than
    ``factor`` (either way) between two years of one module."""
    module = after.module
    old = {m.id: m for _, m in before.measures}
    new = {m.id: m for _, m in after.measures}
    changes = []
    for measure_id, measure in new.items():
        if measure_id not in old:
            changes.append(Change(module, "measure added", measure_id, None, measure.question))
            continue
        then = canonical_label(old[measure_id].maturity, maturity_levels)
        now = canonical_label(measure.maturity, maturity_levels)
        if then and now and then != now:
            kind = "maturity up" if maturity_levels.index(now) > maturity_levels.index(then) else "maturity down"
            changes.append(Change(module, kind, measure_id, then, now))
    changes += [Change(module, "measure removed", mid, m.question, None) for mid, m in old.items() if mid not in new]
    old_proxies = {p.id: p for p in before.probability.proxies}
    new_proxies = {p.id for p in after.probability.proxies}
    changes += [Change(module, "proxy removed", pid, p.label, None) for pid, p in old_proxies.items()
                if pid not in new_proxies]
    for proxy in after.probability.proxies:
        previous = old_proxies.get(proxy.id)
        if previous is None:
            changes.append(Change(module, "proxy added", proxy.id, None, proxy.label))
            continue
        if proxy.unit != previous.unit:
            changes.append(Change(module, "proxy changed unit", proxy.id, previous.unit, proxy.unit))
            continue
        then, now = previous.rate_value(), proxy.rate_value()
        low, high = sorted((then.value, now.value))
        if high and (low == 0 or high / low > factor):  # from or to 0 is a change by any factor
            changes.append(Change(module, f"proxy changed by more than x{factor:g}", proxy.id, then, now))
    return changes

