"""Loading a year: read each file once, scan for TO UPDATE, validate, resolve sources,
check against the methodology and the previous year."""

from __future__ import annotations

import stat
from collections.abc import Collection
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..exceptions import InputError
from ..labels import canonical_label
from .. import paths
from ..methodology import Methodology, load_methodology, named_methodology, resolve_methodology_path
from ..hashing import sha256_file
from ..yamlio import MAX_BYTES, read_yaml
from .crossyear import check_commitments, previous_roadmap
from .markers import refuse_values_to_update
from .judged import Judged, is_judged
from .schema import AssessmentInput, ModuleInput, SeverityInput, validated
from .sources import resolve_sor
from .taxonomy import Taxonomy

def _check_severity(severity: SeverityInput, method: Methodology, path: Path, module: str, where: str, *,
                    hidden: bool) -> None:
    scale_size = len(method.severity.labels)
    scored = ("scope", "scale", "remediability", *(["override"] if severity.override else []))
    for name in scored:
        score = getattr(severity, name).score
        if not 1 <= score <= scale_size:
            shown = "the score" if hidden else f"score {score}"
            raise InputError(f"{shown} is outside the severity scale 1..{scale_size}",
                             file=path, module=module, field=f"{where}.{name}.score")


def _check_level(judged: Judged, labels: list[str], path: Path, module: str, where: str, *, hidden: bool) -> None:
    if canonical_label(judged.level, labels) is None:
        shown = "the level" if hidden else f"'{judged.level}'"
        raise InputError(f"{shown} is not a level of the methodology ({', '.join(labels)})",
                         file=path, module=module, field=f"{where}.level")


def _check_rated(probability: Any, severity: Any, method: Methodology, path: Path, module: str, where: str, *,
                 hidden: Collection[str]) -> None:
    """Probability and severity, judged or assessed, fit the methodology's scales."""
    if is_judged(probability):
        _check_level(probability, method.probability.labels, path, module, f"{where}probability",
                     hidden="probability" in hidden)
    if is_judged(severity):
        _check_level(severity, method.severity.labels, path, module, f"{where}severity", hidden="severity" in hidden)
    else:
        _check_severity(severity, method, path, module, f"{where}severity", hidden="severity" in hidden)


def _check_against_methodology(item: ModuleInput, method: Methodology, path: Path) -> None:
    # messages end up in logs: they never repeat a confidential score, level or answer
    hidden = {*item.confidential_ratings, *(["severity"] if getattr(item.severity, "confidential", False) else [])}
    _check_rated(item.probability, item.severity, method, path, item.module, "", hidden=hidden)
    if method.post_control and item.post_control is None:
        raise InputError("the methodology's residual is post-control: give post_control probability and severity",
                         file=path, module=item.module, field="post_control")
    if item.post_control is not None:  # read only by a post-control methodology, checked whatever the method
        post_hidden = {"probability", "severity"} if "post_control" in hidden else set()
        _check_rated(item.post_control.probability, item.post_control.severity, method, path, item.module,
                     "post_control.", hidden=post_hidden)
    answers_hidden = "effectiveness" in hidden
    if item.effectiveness is not None:
        _check_level(item.effectiveness, method.effectiveness.labels, path, item.module, "effectiveness",
                     hidden=answers_hidden)
    elif not item.questionnaire and not method.post_control:
        raise InputError("give a questionnaire or a judged effectiveness {level, rationale}",
                         file=path, module=item.module, field="effectiveness")
    maturity = [m.label for m in method.maturity]
    for a, area in enumerate(item.questionnaire):
        for q, measure in enumerate(area.measures):
            if canonical_label(measure.maturity, maturity) is None:
                answer = "the answer" if answers_hidden else f"'{measure.maturity}'"
                raise InputError(f"{answer} is not a maturity level ({', '.join(maturity)})",
                                 file=path, module=item.module,
                                 field=f"questionnaire[{a}].measures[{q}].maturity ({measure.id})")
    published = item.published
    checks = (("probability", published.probability, method.probability.labels),
              ("inherent", published.inherent, method.inherent.labels),
              ("effectiveness", published.effectiveness, method.effectiveness.labels),
              ("residual", published.residual, method.residual.labels))
    for name, label, labels in checks:
        if label is not None and canonical_label(label, labels) is None:
            raise InputError(f"'{label}' is not a level of the methodology ({', '.join(labels)})",
                             file=path, module=item.module, field=f"published.{name}")


def _read_year_files(year_dir: Path, modules: list[str] | None) -> dict[str, Any]:
    """The parsed YAML of the assessment and of ``modules`` (every module file by default),
    by file name; each file is read once, for the TO UPDATE scan and for validation."""
    names = ([f"{m}.yaml" for m in modules] if modules is not None
             else sorted(p.name for p in year_dir.glob("*.yaml") if p.name != "assessment.yaml"))
    parsed = {"assessment.yaml": read_yaml(year_dir / "assessment.yaml", InputError)}
    for name in names:
        if (year_dir / name).exists():  # not is_file(): a device or FIFO is refused by name, not missing
            parsed[name] = read_yaml(year_dir / name, InputError, module=name.removesuffix(".yaml"))
    return parsed


def validated_assessment(data: Any, path: Path, year: int) -> AssessmentInput:
    """The parsed ``assessment.yaml`` of the folder of ``year``, validated."""
    assessment: AssessmentInput = validated(AssessmentInput, data, path, None)
    if assessment.year != year:
        raise InputError(f"says year {assessment.year}, but lies in the folder of {year}", file=path, field="year")
    return assessment


class YearInputs(BaseModel):
    """A year's validated inputs: the assessment, its methodology and each module."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    year: int
    data_dir: Path
    assessment: AssessmentInput
    methodology: Methodology
    methodology_path: Path
    modules: dict[str, ModuleInput]
    files: dict[str, Path]
    taxonomy: Taxonomy

    @property
    def previous_year(self) -> int | None:
        """The assessment's previous year when the data folder holds it, else None."""
        year = self.assessment.previous_year
        return year if year in available_years(self.data_dir) else None

    def module(self, module_id: str) -> ModuleInput:
        if module_id not in self.modules:
            raise InputError(f"module not in this year's assessment ({', '.join(self.modules)})",
                             file=self.data_dir / str(self.year) / "assessment.yaml", module=module_id)
        return self.modules[module_id]


def available_years(data_dir: Path | None = None) -> list[int]:
    """Years with an ``assessment.yaml`` under ``data_dir``."""
    root = Path(data_dir) if data_dir is not None else paths.data_dir()
    return sorted(int(p.parent.name) for p in root.glob("*/assessment.yaml") if p.parent.name.isdigit())


def load_year(
    year: int,
    *,
    data_dir: str | Path | None = None,
    methodology: str | Path | None = None,
    modules: list[str] | None = None,
) -> YearInputs:
    """Load and validate a year's assessment and module files.

    Parameters
    ----------
    year : int
    data_dir : str or Path, optional
        The folder holding ``<year>/``; the project's ``data/`` by default.
    methodology : str or Path, optional
        Overrides the methodology named in ``assessment.yaml``.
    modules : list of str, optional
        Load only these modules (all of the assessment's by default).

    Raises
    ------
    InputError
        Naming file, module and field, for the first problem found.
    """
    root = Path(data_dir) if data_dir is not None else paths.data_dir()
    year_dir = root / str(year)
    if year_dir.is_dir():
        return _load_year_once(year, root, methodology, tuple(modules) if modules is not None else None,
                               _fingerprint(year_dir, methodology))
    return _load_year(year, root, methodology, modules)


def _fingerprint(year_dir: Path, methodology: str | Path | None) -> tuple[object, ...]:
    """What a loaded year depends on: the YAML files of this year and the earlier ones (last
    year's roadmap is checked) and the methodologies, by content (a rewrite of the same size
    within the file system's timestamp granularity keeps size and modification time)."""
    year = int(year_dir.name)
    files = sorted(f for f in year_dir.parent.glob("*/*.yaml")
                   if not f.parent.name.isdigit() or int(f.parent.name) <= year)
    if methodology is not None:
        files.append(Path(methodology))
    return tuple((str(f), _digest(f)) for f in files)


def _digest(path: Path) -> object:
    """A regular file's SHA-256; for anything else what stat says (reading it is refused later)."""
    try:
        info = path.stat()
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_BYTES:
        return (info.st_mode, info.st_size)
    return sha256_file(path)


@lru_cache(maxsize=16)
def _load_year_once(year: int, root: Path, methodology: str | Path | None, modules: tuple[str, ...] | None,
                    fingerprint: tuple[object, ...]) -> YearInputs:
    """Notebooks load the same years several times (the summary once per module's previous
    year): the validated inputs are immutable, so the same files give the same object."""
    return _load_year(year, root, methodology, list(modules) if modules is not None else None)


def _load_year(year: int, root: Path, methodology: str | Path | None, modules: list[str] | None) -> YearInputs:
    year_dir = root / str(year)
    if not year_dir.is_dir():
        years = ", ".join(map(str, available_years(root))) or "none"
        raise InputError(f"no data for year {year} (years with data: {years})", file=year_dir)
    assessment_path = year_dir / "assessment.yaml"
    parsed = _read_year_files(year_dir, modules)
    refuse_values_to_update(year_dir, parsed)
    assessment = validated_assessment(parsed["assessment.yaml"], assessment_path, year)
    methodology_path = (resolve_methodology_path(methodology, base=year_dir) if methodology is not None
                        else named_methodology(assessment.methodology, base=year_dir, file=assessment_path))
    method = load_methodology(methodology_path)
    unknown = [m for m in method.probability_by_module if m not in assessment.module_ids]
    if unknown:  # a misspelt module would silently be banded on the main scale
        raise InputError(f"module id(s) {', '.join(unknown)} not in this year's assessment "
                         f"({', '.join(assessment.module_ids)})",
                         file=methodology_path, field="probability_by_module")
    files = {"assessment": assessment_path, "methodology": methodology_path}
    loaded: dict[str, ModuleInput] = {}
    unknown = [m for m in modules or [] if m not in assessment.module_ids]
    if unknown:
        raise InputError(f"module(s) {', '.join(unknown)} not in this year's assessment "
                         f"({', '.join(assessment.module_ids)})", file=assessment_path, field="modules")
    for module_id in assessment.module_ids if modules is None else modules:
        path = year_dir / f"{module_id}.yaml"
        if path.name not in parsed:
            raise InputError("module file is missing", file=path, module=module_id)
        item = validated(ModuleInput, parsed[path.name], path, module_id)
        item = resolve_sor(item, root / str(year), path, module_id)
        if item.module != module_id:
            raise InputError(f"file declares module '{item.module}'", file=path, module=module_id, field="module")
        _check_against_methodology(item, method, path)
        check_commitments(item, path, previous_roadmap(root, assessment.previous_year, module_id))
        loaded[module_id] = item
        files[module_id] = path
    taxonomy = Taxonomy.from_entries(assessment.modules, {m: item.title for m, item in loaded.items()})
    return YearInputs(year=year, data_dir=root, assessment=assessment, methodology=method,
                      methodology_path=methodology_path, modules=loaded, files=files, taxonomy=taxonomy)
