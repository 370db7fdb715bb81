"""The shape of the input files: pydantic models for a year's assessment and its modules.

Every number in an input file may be written plainly (``12345``) or with its
confidentiality (``{value: 12345, confidential: true}``).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AllowInfNan,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic import Strict as StrictType

from ..exceptions import InputError
from ..methodology import describe_validation_error
from ..values import Value
from .judged import Judged, judged_or
from .registries import ART34_2_FACTORS, Art34Letter, Art35Letter
from .taxonomy import ModuleEntries, check_entries

def _to_value(raw: Any) -> Any:
    """Accept ``12345`` or ``{value: 12345, confidential: true}``; reject anything else.

    Messages never repeat a confidential value: they end up in logs."""
    if isinstance(raw, Value):
        return raw
    confidential = False
    if isinstance(raw, dict):
        unknown = set(raw) - {"value", "confidential"}
        if unknown or "value" not in raw:
            raise ValueError("write a number or {value: N, confidential: true|false}")
        confidential = raw.get("confidential", False)
        if not isinstance(confidential, bool):  # null or [] must not pass for public
            raise ValueError("confidential must be true or false")
        raw = raw["value"]
    shown = "the value" if confidential else f"'{raw}'"
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError(f"{shown} is not a number")
    if not math.isfinite(raw):
        raise ValueError("must be a finite number")
    if raw < 0:
        raise ValueError("must not be negative" if confidential else f"must not be negative, got {raw}")
    return Value(float(raw), confidential)


Number = Annotated[Value, BeforeValidator(_to_value)]
# a number written as a number: true and '4' are not numbers, .nan and .inf are not figures
Real = Annotated[float, StrictType(), AllowInfNan(False)]
Percent = Annotated[Real, Field(ge=0, le=100)]


def _date(raw: Any) -> Any:
    """A date as YAML writes it (2024-07-01, quoted or not); 0 is not 1 January 1970."""
    if isinstance(raw, dt.date | str):
        return raw
    raise ValueError("write a date as YYYY-MM-DD")


Date = Annotated[dt.date, BeforeValidator(_date)]


def unique_ids(ids: Iterable[str], what: str) -> None:
    """Raise a ValueError naming the first id given twice."""
    twice = [i for i, n in Counter(ids).items() if n > 1]
    if twice:
        raise ValueError(f"{what} '{twice[0]}' is given twice")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True, allow_inf_nan=False)


class Period(_Strict):
    start: Date
    end: Date

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
    start: Date | None = None
    end: Date | None = None
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
        if self.rate is not None and counted:  # the rate would win silently where they disagree
            raise ValueError("give incidents (or a sor reference) and volume, or a rate, not both")
        if self.volume is not None and self.volume.value == 0:
            raise ValueError("volume is 0: no rate can be computed")
        if self.incidents is not None and self.volume is not None and self.incidents.value > self.volume.value:
            if self.incidents.confidential or self.volume.confidential:  # messages end up in logs
                raise ValueError("incidents exceed volume")
            raise ValueError(f"incidents ({self.incidents.value:,.0f}) exceed volume ({self.volume.value:,.0f})")
        if self.rate is not None and self.unit == "%" and self.rate.value > 100:
            raise ValueError("rate is a percentage and must not exceed 100")
        return self

    def rate_value(self) -> Value:
        """The proxy's rate, confidential when any number it comes from is."""
        if self.rate is not None:
            return self.rate
        return self.incidents * 100 / self.volume  # type: ignore[operator]


class ProbabilityInput(_Strict):
    basis: str
    proxies: list[Proxy] = Field(min_length=1)

    @field_validator("proxies")
    @classmethod
    def _unique_proxies(cls, proxies: list[Proxy]) -> list[Proxy]:
        unique_ids((p.id for p in proxies), "proxy id")
        return proxies

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
    score: StrictInt
    rationale: str = Field(min_length=1)


class SeverityOverride(_Strict):
    score: StrictInt
    rationale: str = Field(min_length=1)


class SeverityInput(_Strict):
    scope: Characteristic
    scale: Characteristic
    remediability: Characteristic
    override: SeverityOverride | None = None
    confidential: StrictBool = False


class FactorFigure(_Strict):
    """A public or confidential figure that documents an Article 34(2) factor."""

    id: str | None = None
    label: str
    value: Number
    unit: str = "items"
    geography: str = "EU"
    period: Period | None = None
    stated_pct: Percent | None = None
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
    weight: Annotated[Real, Field(ge=0)] = 1.0
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
    effectiveness_pct: Percent | None = None
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

    @field_validator("questionnaire")
    @classmethod
    def _unique_measures(cls, questionnaire: list[Area]) -> list[Area]:
        unique_ids((m.id for area in questionnaire for m in area.measures), "measure id")
        return questionnaire

    @field_validator("roadmap")
    @classmethod
    def _unique_roadmap(cls, roadmap: list[RoadmapItem]) -> list[RoadmapItem]:
        unique_ids((item.id for item in roadmap), "roadmap id")
        return roadmap

    @field_validator("commitments")
    @classmethod
    def _one_commitment_per_item(cls, commitments: list[Commitment]) -> list[Commitment]:
        unique_ids((c.id for c in commitments), "commitment for roadmap item")
        return commitments

    @property
    def measures(self) -> list[tuple[str, Measure]]:
        return [(area.area, m) for area in self.questionnaire for m in area.measures]


class AssessmentInput(_Strict):
    """The year's assessment file: platform, period, methodology, previous year."""

    platform: str
    year: StrictInt
    period: Period
    methodology: str
    previous_year: StrictInt | None = None
    modules: ModuleEntries
    note: str | None = None
    proxy_change_factor: Annotated[Real, Field(gt=1)] = 1.5

    _modules_once = field_validator("modules")(check_entries)

    @property
    def module_ids(self) -> list[str]:
        return [entry.id for entry in self.modules]

    @field_validator("previous_year")
    @classmethod
    def _previous_before(cls, previous: int | None, info: ValidationInfo) -> int | None:
        year = info.data.get("year")
        if previous is not None and year is not None and previous >= year:
            raise ValueError(f"{previous} does not come before year {year}")
        return previous


def validated(model: type[BaseModel], data: Any, path: Path, module: str | None) -> Any:
    """``data``, read from ``path``, validated as ``model``."""
    if not isinstance(data, dict):
        raise InputError("the file must be a YAML mapping", file=path, module=module)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        field, message = describe_validation_error(exc)
        raise InputError(message, file=path, module=module, field=field) from None
