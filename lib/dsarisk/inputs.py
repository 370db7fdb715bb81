"""Assessment inputs: one YAML file per year and per risk module, validated on load.

Every number in an input file may be written plainly (``12345``) or with its
confidentiality (``{value: 12345, confidential: true}``). Every problem is
reported as an :class:`InputError` naming the file, the module and the field.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from .exceptions import InputError
from .labels import canonical_label
from .methodology import Methodology, describe_validation_error, load_methodology, read_yaml, resolve_methodology_path
from .paths import DATA_DIR
from .values import Value

MODULES: dict[str, str] = {
    "prohibited-controlled-products": "Prohibited & Controlled Products",
    "intellectual-property": "Intellectual Property Rights",
    "content-compliance": "Content Compliance",
    "data-protection": "Data Protection",
    "consumer-protection": "Consumer Protection & related fundamental rights",
}
ART34_1 = {
    "a": "illegal content",
    "b": "fundamental rights",
    "c": "civic discourse, electoral processes, public security",
    "d": "gender-based violence, public health, minors, physical and mental well-being",
}
ART34_2_FACTORS = (
    "recommender systems",
    "content moderation systems",
    "terms and conditions and their enforcement",
    "advertising systems",
    "data-related practices",
    "intentional manipulation and inauthentic use",
    "regional or linguistic aspects",
)
ART35_1 = {
    "a": "design, features or functioning of the service, including online interfaces",
    "b": "terms and conditions and their enforcement",
    "c": "content moderation processes",
    "d": "algorithmic systems, including recommender systems",
    "e": "advertising systems",
    "f": "internal processes, resources, testing, documentation or supervision",
    "g": "cooperation with trusted flaggers and out-of-court settlement",
    "h": "cooperation with other providers (codes of conduct, crisis protocols)",
    "i": "awareness-raising and interface measures",
    "j": "protection of the rights of the child (age verification, parental controls)",
    "k": "marking of generated or manipulated media",
}
Art34Letter = Literal["a", "b", "c", "d"]
Art35Letter = Literal["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"]


def _to_value(raw: Any) -> Any:
    """Accept ``12345`` or ``{value: 12345, confidential: true}``; reject anything else."""
    if isinstance(raw, Value):
        return raw
    confidential = False
    if isinstance(raw, dict):
        unknown = set(raw) - {"value", "confidential"}
        if unknown or "value" not in raw:
            raise ValueError("write a number or {value: N, confidential: true|false}")
        confidential = bool(raw.get("confidential", False))
        raw = raw["value"]
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError(f"'{raw}' is not a number")
    if raw < 0:
        raise ValueError(f"must not be negative, got {raw}")
    return Value(float(raw), confidential)


Number = Annotated[Value, BeforeValidator(_to_value)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class Period(_Strict):
    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end < self.start:
            raise ValueError(f"period ends ({self.end}) before it starts ({self.start})")
        return self

    def within(self, other: Period) -> bool:
        return other.start <= self.start and self.end <= other.end

    def __str__(self) -> str:
        return f"{self.start:%d %b %Y} - {self.end:%d %b %Y}"


class Subcategory(_Strict):
    name: str
    art34: list[Art34Letter] = Field(min_length=1)


class SorReference(_Strict):
    """Incidents counted from DSA Transparency Database statements (dsarisk.sources.sor)."""

    path: str
    platform: str
    module: str | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    engine: Literal["duckdb", "spark"] = "duckdb"


class Proxy(_Strict):
    """A probability proxy: incidents among volume checked, or a share given directly."""

    id: str
    label: str
    sor: SorReference | None = None
    incidents: Number | None = None
    volume: Number | None = None
    rate: Number | None = None
    unit: str = "%"
    period: Period
    source: str
    note: str | None = None

    @model_validator(mode="after")
    def _counts_or_rate(self) -> Proxy:
        counted = self.incidents is not None or self.sor is not None
        if self.rate is None and not (counted and self.volume is not None):
            raise ValueError("give incidents (or a sor reference) and volume, or a rate")
        if self.volume is not None and self.volume.value == 0:
            raise ValueError("volume is 0: no rate can be computed")
        if self.incidents is not None and self.volume is not None and self.incidents.value > self.volume.value:
            raise ValueError(
                f"incidents ({self.incidents.value:,.0f}) exceed volume ({self.volume.value:,.0f})"
            )
        return self

    def rate_value(self) -> Value:
        """The proxy's rate, confidential when any number it comes from is."""
        if self.rate is not None:
            return self.rate
        return self.incidents * 100 / self.volume  # type: ignore[operator]


class ProbabilityInput(_Strict):
    basis: str
    proxies: list[Proxy] = Field(min_length=1)

    @model_validator(mode="after")
    def _basis_exists(self) -> ProbabilityInput:
        ids = [p.id for p in self.proxies]
        if self.basis not in ids:
            raise ValueError(f"basis '{self.basis}' is not a proxy id ({', '.join(ids)})")
        return self

    @property
    def basis_proxy(self) -> Proxy:
        return next(p for p in self.proxies if p.id == self.basis)


class Characteristic(_Strict):
    score: int
    rationale: str = Field(min_length=1)


class SeverityOverride(_Strict):
    score: int
    rationale: str = Field(min_length=1)


class SeverityInput(_Strict):
    scope: Characteristic
    scale: Characteristic
    remediability: Characteristic
    override: SeverityOverride | None = None
    confidential: bool = False


class FactorFigure(_Strict):
    """A public or confidential figure that documents an Article 34(2) factor."""

    id: str | None = None
    label: str
    value: Number
    unit: str = "items"
    geography: str = "EU"
    period: Period | None = None
    stated_pct: float | None = None
    denominator: Number | None = None


def _one_of(value: str, allowed: Collection[str], what: str, *, separator: str = ", ") -> str:
    """``value`` when ``allowed`` holds it; otherwise a ValueError listing what is allowed."""
    if value not in allowed:
        raise ValueError(f"'{value}' is not {what} ({separator.join(allowed)})")
    return value


class Factor(_Strict):
    factor: str
    assessment: str
    figures: list[FactorFigure] = []

    @field_validator("factor")
    @classmethod
    def _known_factor(cls, factor: str) -> str:
        return _one_of(factor, ART34_2_FACTORS, "an Article 34(2) factor", separator="; ")


class Measure(_Strict):
    id: str
    question: str
    maturity: str
    weight: float = Field(default=1.0, ge=0)
    component: str | None = None
    art35: list[Art35Letter] = Field(min_length=1)


class Area(_Strict):
    area: str
    measures: list[Measure] = Field(min_length=1)


class RoadmapItem(_Strict):
    id: str
    measure: str
    art35: list[Art35Letter] = Field(min_length=1)
    due: str | None = None


class Commitment(_Strict):
    """Last year's roadmap item and what became of it."""

    id: str
    measure: str
    art35: list[Art35Letter] = Field(min_length=1)
    status: Literal["delivered", "in progress", "delayed", "dropped"] | None = None
    evidence: str = ""
    implemented_by: list[str] = []


class Published(_Strict):
    """The ratings the published report states for the year (None where it states none)."""

    probability: str | None = None
    inherent: str | None = None
    effectiveness: str | None = None
    effectiveness_pct: float | None = None
    residual: str | None = None
    source: str = "published report"


class ChangeReason(_Strict):
    kind: Literal["methodology", "real", "both", "none"]
    explanation: str


class ModuleInput(_Strict):
    """Everything a module notebook needs for one year."""

    module: str
    title: str
    note: str | None = None
    definition: str
    subcategories: list[Subcategory] = Field(min_length=1)
    probability: ProbabilityInput
    severity: SeverityInput
    factors: list[Factor] = []
    questionnaire: list[Area] = Field(min_length=1)
    roadmap: list[RoadmapItem] = []
    published: Published = Published()
    change_since_previous: ChangeReason | None = None
    confidential_ratings: list[Literal["probability", "severity", "effectiveness"]] = []
    commitments: list[Commitment] = []

    @field_validator("module")
    @classmethod
    def _known_module(cls, module: str) -> str:
        return _one_of(module, MODULES, "a module id")

    @property
    def measures(self) -> list[tuple[str, Measure]]:
        return [(area.area, m) for area in self.questionnaire for m in area.measures]


class AssessmentInput(_Strict):
    """The year's assessment file: platform, period, methodology, previous year."""

    platform: str
    year: int
    period: Period
    methodology: str
    previous_year: int | None = None
    modules: list[str] = Field(default_factory=lambda: list(MODULES))
    note: str | None = None
    proxy_change_factor: float = Field(default=1.5, gt=1)

    @field_validator("modules")
    @classmethod
    def _known_modules(cls, modules: list[str]) -> list[str]:
        unknown = [m for m in modules if m not in MODULES]
        if unknown:
            raise ValueError(f"unknown module id(s) {', '.join(unknown)} ({', '.join(MODULES)})")
        return modules


def _validated(model: type[BaseModel], data: Any, path: Path, module: str | None) -> Any:
    """``data``, read from ``path``, validated as ``model``."""
    if not isinstance(data, dict):
        raise InputError("the file must be a YAML mapping", file=path, module=module)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        field, message = describe_validation_error(exc)
        raise InputError(message, file=path, module=module, field=field) from None


def _resolve_sor(item: ModuleInput, year_dir: Path, path: Path, module: str) -> ModuleInput:
    """Count the incidents of proxies that cite the Transparency Database (their source text
    then says which files and filters gave the count)."""
    if not any(proxy.sor for proxy in item.probability.proxies):
        return item
    from .sources.sor import Filters, aggregate

    proxies = []
    for index, proxy in enumerate(item.probability.proxies):
        if proxy.sor is None:
            proxies.append(proxy)
            continue
        if proxy.incidents is not None:
            raise InputError("give incidents or a sor reference that counts them, not both",
                             file=path, module=module, field=f"probability.proxies.{index}")
        ref = proxy.sor
        counted = aggregate(year_dir / ref.path, Filters(platforms=(ref.platform,), start=ref.start, end=ref.end),
                            engine=ref.engine)
        incidents = counted.proxy(platform=ref.platform, module=ref.module or module)
        files = ", ".join(f"{f['name']} (sha256 {f['sha256'][:12]})" for f in counted.provenance["files"])
        source = (f"{proxy.source}: {incidents:,} statements of {ref.platform} mapped to {ref.module or module}, "
                  f"{counted.provenance['rows_read']:,} rows read, {counted.provenance['rows_rejected']:,} rejected; "
                  f"files {files}")
        proxies.append(proxy.model_copy(update={"incidents": Value(float(incidents)), "source": source}))
    return _validated(ModuleInput, {**item.model_dump(), "probability": {
        "basis": item.probability.basis, "proxies": [p.model_dump() for p in proxies]}}, path, module)


def _check_against_methodology(item: ModuleInput, method: Methodology, path: Path) -> None:
    scale_size = len(method.severity.labels)
    scored = ("scope", "scale", "remediability", *(["override"] if item.severity.override else []))
    for name in scored:
        score = getattr(item.severity, name).score
        if not 1 <= score <= scale_size:
            raise InputError(f"score {score} is outside the severity scale 1..{scale_size}",
                             file=path, module=item.module, field=f"severity.{name}.score")
    maturity = [m.label for m in method.maturity]
    for a, area in enumerate(item.questionnaire):
        for q, measure in enumerate(area.measures):
            if canonical_label(measure.maturity, maturity) is None:
                raise InputError(f"'{measure.maturity}' is not a maturity level ({', '.join(maturity)})",
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


def _read_year_files(year_dir: Path, modules: list[str] | None) -> dict[str, Any]:
    """The parsed YAML of the assessment and of ``modules`` (every module file by default),
    by file name; each file is read once, for the TO UPDATE scan and for validation."""
    names = ([f"{m}.yaml" for m in modules] if modules is not None
             else sorted(p.name for p in year_dir.glob("*.yaml") if p.name != "assessment.yaml"))
    parsed = {"assessment.yaml": read_yaml(year_dir / "assessment.yaml", InputError)}
    for name in names:
        if (year_dir / name).is_file():
            parsed[name] = read_yaml(year_dir / name, InputError, module=name.removesuffix(".yaml"))
    return parsed


def _refuse_values_to_update(year_dir: Path, parsed: dict[str, Any]) -> None:
    """A scaffolded year fails with the full list of what still needs a value, never with
    last year's numbers."""
    pending = []
    for name, data in parsed.items():
        fields = _marked_fields(data)
        pending += [f"{name}: {', '.join(fields)}"] if fields else []
    if pending:
        count = sum(entry.count(",") + 1 for entry in pending)
        raise InputError(f"{count} value(s) still marked {TO_UPDATE}: " + "; ".join(pending), file=year_dir)


def _previous_roadmap(root: Path, previous_year: int | None, module: str) -> list[str] | None:
    """Ids of the previous year's roadmap items for a module, or None without that year."""
    path = root / str(previous_year) / f"{module}.yaml"
    if previous_year is None or not path.is_file():
        return None
    data = read_yaml(path, InputError, module=module) or {}
    return [str(item.get("id")) for item in data.get("roadmap") or [] if isinstance(item, dict)]


def _check_commitments(item: ModuleInput, path: Path, previous_roadmap: list[str] | None) -> None:
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


def available_years(data_dir: Path = DATA_DIR) -> list[int]:
    """Years with an ``assessment.yaml`` under ``data_dir``."""
    return sorted(int(p.parent.name) for p in Path(data_dir).glob("*/assessment.yaml") if p.parent.name.isdigit())


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
    root = Path(data_dir) if data_dir is not None else DATA_DIR
    year_dir = root / str(year)
    if year_dir.is_dir():
        return _load_year_once(year, root, methodology, tuple(modules) if modules is not None else None,
                               _fingerprint(year_dir, methodology))
    return _load_year(year, root, methodology, modules)


def _fingerprint(year_dir: Path, methodology: str | Path | None) -> tuple[object, ...]:
    """What a loaded year depends on, cheaply: the files' names, sizes and modification times."""
    files = sorted([*year_dir.glob("*.yaml"), *year_dir.parent.glob("methodology/*.yaml")])
    if methodology is not None and Path(methodology).is_file():
        files.append(Path(methodology))
    return tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)


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
    _refuse_values_to_update(year_dir, parsed)
    assessment: AssessmentInput = _validated(AssessmentInput, parsed["assessment.yaml"], assessment_path, None)
    if assessment.year != year:
        raise InputError(f"says year {assessment.year}, but lies in the folder of {year}",
                         file=assessment_path, field="year")
    methodology_path = resolve_methodology_path(methodology or assessment.methodology, base=year_dir)
    method = load_methodology(methodology_path)
    files = {"assessment": assessment_path, "methodology": methodology_path}
    loaded: dict[str, ModuleInput] = {}
    for module_id in assessment.modules if modules is None else modules:
        path = year_dir / f"{module_id}.yaml"
        if not path.is_file():
            raise InputError("module file is missing", file=path, module=module_id)
        item = _validated(ModuleInput, parsed[path.name], path, module_id)
        item = _resolve_sor(item, root / str(year), path, module_id)
        if item.module != module_id:
            raise InputError(f"file declares module '{item.module}'", file=path, module=module_id, field="module")
        _check_against_methodology(item, method, path)
        _check_commitments(item, path, _previous_roadmap(root, assessment.previous_year, module_id))
        loaded[module_id] = item
        files[module_id] = path
    return YearInputs(year=year, data_dir=root, assessment=assessment, methodology=method,
                      methodology_path=methodology_path, modules=loaded, files=files)
