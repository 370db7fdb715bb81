"""Methodologies as data: load, validate and query scales and matrices.

A methodology file (YAML) declares every scale and matrix a risk assessment
uses. Nothing about a particular platform's method lives in code: a 3x3
lookup, a 5x5 lookup or a score product with bands are all files.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .exceptions import InputError, MethodologyError
from .labels import canonical_label
from . import paths
from .yamlio import read_yaml

CHARACTERISTICS = ("scope", "scale", "remediability")


_HEX_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})")


def _color(color: str) -> str:
    """A colour the heatmaps can draw: hex, or a name matplotlib knows (checked only then: the
    import costs a command line a noticeable part of a second)."""
    if not _HEX_COLOR.fullmatch(color):
        from matplotlib.colors import is_color_like

        if not is_color_like(color):
            raise ValueError(f"'{color}' is not a colour (#rrggbb or a matplotlib colour name)")
    return color


Color = Annotated[str, AfterValidator(_color)]


class _Strict(BaseModel):
    # strict: true and '4' are not numbers; .nan and .inf are no threshold, weight or credit
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class Level(_Strict):
    """A named level of a scale, with an optional heatmap colour."""

    label: str
    color: Color | None = None
    description: str | None = None


class Band(_Strict):
    """A level of a continuous scale: it covers ``[min, next band's min)``."""

    model_config = ConfigDict(**_Strict.model_config, populate_by_name=True)

    label: str
    min: float = Field(validation_alias="min_pct")
    color: Color | None = None
    description: str | None = None
    factor: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _accept_min_or_min_pct(cls, data: Any) -> Any:
        if isinstance(data, dict) and "min" in data and "min_pct" not in data:
            data = {**data, "min_pct": data["min"]}
            del data["min"]
        return data


class ScoreBand(_Strict):
    """A band over a numeric score (a product of scores): ``[min, next min)``."""

    label: str
    min: float


def _check_weights(weights: dict[str, float], field: str) -> None:
    if any(weight < 0 for weight in weights.values()) or sum(weights.values()) <= 0:
        raise MethodologyError("weights must be non-negative and not all 0", field=field)


def _as_levels(value: Any) -> Any:
    if isinstance(value, list):
        return [{"label": item} if isinstance(item, str) else item for item in value]
    return value


def _check_thresholds(bands: list[Band] | list[ScoreBand], field: str, *, start_at_zero: bool,
                      percent: bool = False) -> None:
    mins = [band.min for band in bands]
    if percent and mins[-1] > 100:
        raise MethodologyError(f"thresholds are percentages, {mins[-1]:g} is over 100", field=field)
    if start_at_zero and mins[0] != 0:
        raise MethodologyError(f"thresholds must start at 0, not {mins[0]:g}", field=field)
    for lower, upper in zip(mins, mins[1:]):
        if upper <= lower:
            raise MethodologyError(
                f"thresholds must be strictly increasing, {upper:g} follows {lower:g}", field=field
            )


def _canonical(label: str, labels: list[str], field: str) -> str:
    found = canonical_label(label, labels)
    if found is None:
        raise MethodologyError(f"'{label}' is not a declared level ({', '.join(labels)})", field=field)
    return found


class _LevelScale(_Strict):
    """A scale of named levels, lowest first (a level's score is its 1-based position)."""

    levels: list[Level] = Field(min_length=2)

    _levels = field_validator("levels", mode="before")(_as_levels)

    @property
    def labels(self) -> list[str]:
        return [level.label for level in self.levels]


class ProbabilityScale(_Strict):
    """Probability levels banded on a rate (``unit`` is ``%`` unless a module counts otherwise)."""

    unit: str = "%"
    proxy: str | None = None
    levels: list[Band] = Field(min_length=2)

    @property
    def labels(self) -> list[str]:
        return [band.label for band in self.levels]


class SeveritySpec(_LevelScale):
    """Severity levels (score = 1-based position) and how the three characteristics combine."""

    aggregate: Literal["max", "mean", "median", "weighted"] = "max"
    weights: dict[Literal["scope", "scale", "remediability"], float] | None = None

    @model_validator(mode="after")
    def _weights_fit_aggregate(self) -> SeveritySpec:
        if self.aggregate == "weighted":
            if not self.weights or set(self.weights) != set(CHARACTERISTICS):
                raise MethodologyError(
                    "a weighted aggregate needs a weight for each of scope, scale, remediability",
                    field="severity.weights",
                )
            _check_weights(self.weights, "severity.weights")
        elif self.weights is not None:
            raise MethodologyError(
                f"weights are only read with aggregate: weighted, not {self.aggregate}",
                field="severity.weights",
            )
        return self


class InherentOverride(_Strict):
    """A cell of a product method whose level is set by hand."""

    probability: str
    severity: str
    level: str


class InherentSpec(_LevelScale):
    """Inherent risk = probability x severity, by lookup or by a banded score product."""

    method: Literal["matrix", "product"] = "matrix"
    matrix: dict[str, list[str]] | None = None
    bands: list[ScoreBand] | None = None
    overrides: list[InherentOverride] = []


class MaturityLevel(_Strict):
    """A DTSP maturity level and the share of a question's credit it earns."""

    label: str
    credit: float
    description: str | None = None

    @field_validator("credit")
    @classmethod
    def _credit_in_unit_interval(cls, credit: float) -> float:
        if not 0 <= credit <= 1:
            raise MethodologyError(f"credit {credit:g} is outside [0, 1]", field="maturity.credit")
        return credit


class EffectivenessSpec(_Strict):
    """Mitigation effectiveness bands over a percentage, optionally a blend of components."""

    levels: list[Band] = Field(min_length=2)
    components: dict[str, float] | None = None

    @property
    def labels(self) -> list[str]:
        return [band.label for band in self.levels]


class ResidualSpec(_LevelScale):
    """Residual risk from inherent risk and effectiveness.

    ``matrix`` looks the cell up; ``product`` multiplies the inherent value by
    the effectiveness level's ``factor``; ``reduction`` multiplies it by
    ``1 - effectiveness % / 100``. Both numeric methods are banded by ``bands``.
    ``post_control`` ignores effectiveness: the module re-assesses probability and severity
    on post-control data, and the residual is read from ``matrix`` (rows probability, columns
    severity) or, without a matrix, bands the product of their scores.
    """

    method: Literal["matrix", "product", "reduction", "post_control"] = "matrix"
    matrix: dict[str, list[str]] | None = None
    inherent_value: Literal["score", "level"] = "level"
    bands: list[ScoreBand] | None = None


class Methodology(_Strict):
    """A whole scoring methodology, validated for consistency on construction."""

    name: str
    description: str | None = None
    notes: list[str] = []
    allow_non_monotonic: bool = False
    probability: ProbabilityScale
    probability_by_module: dict[str, ProbabilityScale] = {}
    severity: SeveritySpec
    inherent: InherentSpec
    maturity: list[MaturityLevel] = Field(min_length=2)
    effectiveness: EffectivenessSpec
    residual: ResidualSpec

    @model_validator(mode="before")
    @classmethod
    def _canonicalise_labels(cls, data: Any) -> Any:
        """Rewrite label variants in matrices, bands and overrides to the declared spellings."""
        if not isinstance(data, dict):
            return data
        try:
            return _canonicalised(data)
        except (KeyError, TypeError, AttributeError):
            return data  # malformed structure: let the field validators say where

    @model_validator(mode="after")
    def _consistent(self) -> Methodology:
        for name, scale in (("probability", self.probability),
                            *((f"probability_by_module.{m}", s) for m, s in self.probability_by_module.items())):
            _check_thresholds(scale.levels, f"{name}.levels", start_at_zero=True, percent=scale.unit == "%")
        _check_thresholds(self.effectiveness.levels, "effectiveness.levels", start_at_zero=True, percent=True)
        for name in ("probability", "severity", "inherent", "effectiveness", "residual"):
            _check_unique(getattr(self, name).labels, f"{name}.levels")
        self._check_inherent()
        self._check_residual()
        if self.effectiveness.components is not None:
            _check_weights(self.effectiveness.components, "effectiveness.components")
        _check_unique([m.label for m in self.maturity], "maturity")
        return self

    # -- consistency checks -------------------------------------------------------------
    def _check_inherent(self) -> None:
        spec = self.inherent
        probability, severity, levels = self.probability.labels, self.severity.labels, spec.labels
        for module, scale in self.probability_by_module.items():
            if scale.labels != probability:
                raise MethodologyError(
                    "a module's probability scale must use the main scale's labels",
                    field=f"probability_by_module.{module}.levels",
                )
        if spec.method == "matrix":
            if spec.matrix is None:
                raise MethodologyError("method matrix needs a matrix", field="inherent.matrix")
            self._check_lookup(spec.matrix, probability, len(severity), levels, "inherent.matrix", rising_rows=True)
        else:
            if not spec.bands:
                raise MethodologyError("method product needs bands", field="inherent.bands")
            _check_band_labels(spec.bands, levels, "inherent.bands")
            self._check_bands_cover(spec.bands, levels, lowest=1, what="score", field="inherent.bands")
        for i, override in enumerate(spec.overrides):
            _canonical(override.probability, probability, f"inherent.overrides[{i}].probability")
            _canonical(override.severity, severity, f"inherent.overrides[{i}].severity")
            _canonical(override.level, levels, f"inherent.overrides[{i}].level")

    def _check_residual(self) -> None:
        spec = self.residual
        effectiveness, levels = self.effectiveness.labels, spec.labels
        if spec.inherent_value == "score" and self.inherent.method != "product":
            raise MethodologyError(
                "inherent_value: score needs an inherent method product (a matrix gives no score)",
                field="residual.inherent_value",
            )
        if spec.method == "post_control":
            self._check_post_control()
            return
        if spec.method == "matrix":
            if spec.matrix is None:
                raise MethodologyError("method matrix needs a matrix", field="residual.matrix")
            self._check_lookup(spec.matrix, effectiveness, len(self.inherent.labels), levels, "residual.matrix",
                               rising_rows=False)
            return
        if not spec.bands:
            raise MethodologyError(f"method {spec.method} needs bands", field="residual.bands")
        _check_band_labels(spec.bands, levels, "residual.bands")
        lowest_input = 1.0
        if spec.method == "product":
            factors = [band.factor for band in self.effectiveness.levels]
            if any(factor is None for factor in factors):
                raise MethodologyError(
                    "residual method product needs a factor on every effectiveness level",
                    field="effectiveness.levels.factor",
                )
            if not self.allow_non_monotonic and any(b > a for a, b in zip(factors, factors[1:])):
                raise MethodologyError(
                    "factors must not rise with effectiveness (more effectiveness would give a higher residual)",
                    field="effectiveness.levels.factor",
                )
            lowest = lowest_input * min(factors)  # type: ignore[type-var]
        else:
            lowest = 0.0
        self._check_bands_cover(spec.bands, levels, lowest=lowest, what="value", field="residual.bands")

    def _check_post_control(self) -> None:
        spec, probability, levels = self.residual, self.probability.labels, self.residual.labels
        if spec.inherent_value != "level":
            raise MethodologyError("a post_control residual reads no inherent value", field="residual.inherent_value")
        if spec.matrix is not None:
            if spec.bands:
                raise MethodologyError("give a matrix or bands, not both", field="residual.bands")
            self._check_lookup(spec.matrix, probability, len(self.severity.labels), levels, "residual.matrix",
                               rising_rows=True)
            return
        if not spec.bands:
            raise MethodologyError("method post_control needs a matrix or bands over probability x severity",
                                   field="residual.bands")
        _check_band_labels(spec.bands, levels, "residual.bands")
        self._check_bands_cover(spec.bands, levels, lowest=1, what="score", field="residual.bands")

    def _check_lookup(self, matrix: dict[str, list[str]], rows: list[str], width: int, levels: list[str],
                      field: str, *, rising_rows: bool) -> None:
        """A lookup matrix is complete, names declared levels, and (unless allowed) is monotone."""
        _check_matrix(matrix, rows, width, levels, field)
        if not self.allow_non_monotonic:
            grid = [[levels.index(c) for c in matrix[row]] for row in rows]
            _check_monotone(grid, rising_rows=rising_rows, rising_cols=True, field=field)

    def _check_bands_cover(self, bands: Sequence[Band | ScoreBand], levels: list[str], *, lowest: float,
                           what: str, field: str) -> None:
        """The first band must cover ``lowest``, and the bands' levels must not fall."""
        if bands[0].min > lowest:
            raise MethodologyError(f"no band covers {what} {lowest:g} (the first band starts at {bands[0].min:g})",
                                   field=field)
        if not self.allow_non_monotonic:
            _check_monotone([[levels.index(b.label) for b in bands]], True, True, field)

    # -- queries ----------------------------------------------------------------------
    def probability_scale(self, module: str | None = None) -> ProbabilityScale:
        """Return the probability scale of ``module`` (its own, or the main one)."""
        if module is not None and module in self.probability_by_module:
            return self.probability_by_module[module]
        return self.probability

    @property
    def post_control(self) -> bool:
        """Whether the residual is re-assessed after controls rather than derived from
        inherent risk and effectiveness."""
        return self.residual.method == "post_control"

    def color_of(self, scale: Literal["inherent", "residual"], label: str) -> str | None:
        """Return the colour a file declares for an inherent or residual level."""
        spec = self.inherent if scale == "inherent" else self.residual
        return next((level.color for level in spec.levels if level.label == label), None)


def _check_band_labels(bands: list[ScoreBand], levels: list[str], field: str) -> None:
    _check_thresholds(bands, field, start_at_zero=False)
    for band in bands:
        _canonical(band.label, levels, field)


def _check_unique(labels: list[str], field: str) -> None:
    seen: set[str] = set()
    for label in labels:
        if label in seen:
            raise MethodologyError(f"label '{label}' is declared twice", field=field)
        seen.add(label)


def _check_matrix(matrix: dict[str, list[str]], rows: list[str], width: int, levels: list[str], field: str) -> None:
    missing = [row for row in rows if row not in matrix]
    extra = [row for row in matrix if row not in rows]
    if missing:
        raise MethodologyError(f"missing row(s) {', '.join(missing)}", field=field)
    if extra:
        raise MethodologyError(f"row(s) {', '.join(extra)} are not declared levels ({', '.join(rows)})", field=field)
    for row in rows:
        cells = matrix[row]
        if len(cells) != width:
            raise MethodologyError(f"row has {len(cells)} cells, expected {width}", field=f"{field}.{row}")
        for cell in cells:
            if cell not in levels:
                raise MethodologyError(
                    f"cell '{cell}' is not a declared level ({', '.join(levels)})", field=f"{field}.{row}"
                )


def _check_monotone(grid: list[list[int]], rising_rows: bool, rising_cols: bool, field: str) -> None:
    """Check a grid of level positions: along each row and down the rows it must not fall
    (``rising``) or rise (not ``rising``)."""
    for r, row in enumerate(grid):
        for c in range(1, len(row)):
            if (row[c] < row[c - 1]) if rising_cols else (row[c] > row[c - 1]):
                raise MethodologyError(
                    "matrix is not monotone along a row; say allow_non_monotonic: true if intended",
                    field=f"{field} (row {r + 1}, cell {c + 1})",
                )
        if r:
            for c, cell in enumerate(row):
                above = grid[r - 1][c]
                if (cell < above) if rising_rows else (cell > above):
                    raise MethodologyError(
                        "matrix is not monotone down a column; say allow_non_monotonic: true if intended",
                        field=f"{field} (row {r + 1}, cell {c + 1})",
                    )


def _labels_of(levels: list[Any]) -> list[str]:
    return [level if isinstance(level, str) else level["label"] for level in levels]


def _canonical_or_same(label: Any, labels: list[str]) -> Any:
    if not isinstance(label, str):
        return label
    return canonical_label(label, labels) or label


def _canonicalised(data: dict[str, Any]) -> dict[str, Any]:
    data = {**data}
    probability = _labels_of(data["probability"]["levels"])
    severity = _labels_of(data["severity"]["levels"])
    inherent = {**data["inherent"]}
    inherent_levels = _labels_of(inherent["levels"])
    effectiveness = _labels_of(data["effectiveness"]["levels"])
    residual = {**data["residual"]}
    residual_levels = _labels_of(residual["levels"])
    if isinstance(inherent.get("matrix"), dict):
        inherent["matrix"] = {
            _canonical_or_same(row, probability): [_canonical_or_same(c, inherent_levels) for c in cells]
            for row, cells in inherent["matrix"].items()
        }
    residual_rows = probability if residual.get("method") == "post_control" else effectiveness
    if isinstance(residual.get("matrix"), dict):
        residual["matrix"] = {
            _canonical_or_same(row, residual_rows): [_canonical_or_same(c, residual_levels) for c in cells]
            for row, cells in residual["matrix"].items()
        }
    for spec, levels in ((inherent, inherent_levels), (residual, residual_levels)):
        if isinstance(spec.get("bands"), list):
            spec["bands"] = [{**band, "label": _canonical_or_same(band["label"], levels)} for band in spec["bands"]]
    inherent["overrides"] = [
        {
            "probability": _canonical_or_same(o["probability"], probability),
            "severity": _canonical_or_same(o["severity"], severity),
            "level": _canonical_or_same(o["level"], inherent_levels),
        }
        for o in inherent.get("overrides") or []
    ]
    data["inherent"], data["residual"] = inherent, residual
    return data


def describe_validation_error(error: ValidationError, *, unknown: str = "unknown field",
                              count_more: bool = False) -> tuple[str, str]:
    """(field, message) of pydantic's first error, in our words: ``unknown`` for a field the
    schema does not have; with ``count_more``, how many further problems there are."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"] if not str(part).startswith("function-")) or "(top level)"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = unknown
    elif first["type"] == "missing":
        message = "required field is missing"
    more = len(error.errors()) - 1
    if count_more and more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return field, message


def parse_methodology(data: Any, *, source: str | Path = "<methodology>") -> Methodology:
    """Validate an already parsed mapping as a methodology."""
    if not isinstance(data, dict):
        raise MethodologyError("a methodology file must be a mapping of sections", file=source)
    try:
        return Methodology.model_validate(data)
    except ValidationError as exc:
        field, message = describe_validation_error(
            exc, unknown="unknown field (not part of the methodology schema)", count_more=True)
        raise MethodologyError(message, file=source, field=field) from None
    except MethodologyError as exc:
        raise MethodologyError(exc.message, file=source, field=exc.field) from None


def resolve_methodology_path(name: str | Path, *, base: Path | None = None) -> Path:
    """Resolve a methodology reference: a path, a path relative to ``base``, or a bare name
    of a file in ``methodology/`` beside ``base``, in the workspace's, or among the tool's
    presets (``year2`` or ``year2.yaml``)."""
    path = Path(name)
    candidates = [path]
    if base is not None and not path.is_absolute():
        candidates.append(base / path)
    beside = [base.parent / "methodology"] if base is not None else []
    for folder in beside + paths.methodology_dirs():
        candidates += [folder / path, folder / f"{path}.yaml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    return path


def named_methodology(name: str, *, base: Path, file: Path | None = None, field: str = "methodology") -> Path:
    """The methodology file an input names (see :func:`resolve_methodology_path`), or an
    InputError naming where it was named."""
    path = resolve_methodology_path(name, base=base)
    if not path.is_file():
        raise InputError(f"no methodology '{name}' (a path, or a name in data/methodology)", file=file, field=field)
    return path


def load_methodology(path: str | Path) -> Methodology:
    """Load and validate a methodology YAML file.

    Parameters
    ----------
    path : str or Path
        A file path, or the bare name of a file in ``data/methodology``.

    Raises
    ------
    MethodologyError
        With the file and the offending field, for any problem.
    """
    resolved = resolve_methodology_path(path)
    return parse_methodology(read_yaml(resolved, MethodologyError), source=resolved)
