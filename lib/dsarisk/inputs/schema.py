"""The shape of the input files: pydantic models for a year's assessment and its modules.

Every number in an input file may be written plainly (``12345``) or with its
confidentiality (``{value: 12345, confidential: true}``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..exceptions import InputError
from ..methodology import describe_validation_error
from ..values import Value
from .judged import Judged, judged_or
from .registries import ART34_2_FACTORS, Art34Letter, Art35Letter
from .taxonomy import ModuleEntries, check_entries

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


class PostControlInput(_Strict):
    """Probability and severity re-assessed on post-control data (a ``post_control`` residual)."""

    probability: judged_or(ProbabilityInput)  # type: ignore[valid-type]
    severity: judged_or(SeverityInput)  # type: ignore[valid-type]


class ModuleInput(_Strict):
    """Everything a module notebook needs for one year. Only ``module``, ``title``,
    probability, severity and (unless the methodology does without) effectiveness are
    required; each may be a :class:`~dsarisk.inputs.judged.Judged` level."""

    module: str
    title: str
    note: str | None = None
    definition: str | None = None
    subcategories: list[Subcategory] = []
    probability: judged_or(ProbabilityInput)  # type: ignore[valid-type]
    severity: judged_or(SeverityInput)  # type: ignore[valid-type]
    effectiveness: Judged | None = None
    post_control: PostControlInput | None = None
    factors: list[Factor] = []
    questionnaire: list[Area] = []
    roadmap: list[RoadmapItem] = []
    published: Published = Published()
    change_since_previous: ChangeReason | None = None
    confidential_ratings: list[Literal["probability", "severity", "effectiveness", "post_control"]] = []
    commitments: list[Commitment] = []

    @model_validator(mode="after")
    def _effectiveness_once(self) -> ModuleInput:
        if self.effectiveness is not None and self.questionnaire:
            raise ValueError("give a questionnaire or a judged effectiveness, not both")
        return self

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
    modules: ModuleEntries
    note: str | None = None
    proxy_change_factor: float = Field(default=1.5, gt=1)

    _modules_once = field_validator("modules")(check_entries)

    @property
    def module_ids(self) -> list[str]:
        return [entry.id for entry in self.modules]


def _validated(model: type[BaseModel], data: Any, path: Path, module: str | None) -> Any:
    """``data``, read from ``path``, validated as ``model``."""
    if not isinstance(data, dict):
        raise InputError("the file must be a YAML mapping", file=path, module=module)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        field, message = describe_validation_error(exc)
        raise InputError(message, file=path, module=module, field=field) from None


def validated(model: type[BaseModel], data: Any, path: Path, module: str | None) -> Any:
    """``data``, read from ``path``, validated as ``model``."""
    if not isinstance(data, dict):
        raise InputError("the file must be a YAML mapping", file=path, module=module)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        field, message = describe_validation_error(exc)
        raise InputError(message, file=path, module=module, field=field) from None
