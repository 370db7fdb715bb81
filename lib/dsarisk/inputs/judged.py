"""Ratings an analyst judges: a level of the methodology's scale with a written rationale.

Many platforms rate probability, severity or control effectiveness by judgement rather than
from a proxy rate, characteristics or a questionnaire. Any of the three may be written
``{level: <label>, rationale: <text>}`` in a module file instead.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Discriminator, StringConstraints, Tag


class Judged(BaseModel):
    """A judged level: a label of the methodology's scale (any spelling variant) and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    level: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]
    rationale: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

    @property
    def proxies(self) -> list[Any]:
        """A judged probability counts nothing: no proxy to show, check or carry over."""
        return []


# the union's tags appear in pydantic's error locations; this prefix lets the error
# describer leave them out, so that a field reads ``probability.rationale``
UNION_TAG = "function-shape-"


def _kind(raw: Any) -> str:
    judged = isinstance(raw, Judged) or (isinstance(raw, dict) and "level" in raw)
    return f"{UNION_TAG}judged" if judged else f"{UNION_TAG}assessed"


def judged_or(model: type[BaseModel]) -> Any:
    """``model`` or a :class:`Judged` level, told apart by a ``level`` key (errors then name
    the right shape's fields instead of both shapes')."""
    return Annotated[Annotated[Judged, Tag(f"{UNION_TAG}judged")] | Annotated[model, Tag(f"{UNION_TAG}assessed")],
                     Discriminator(_kind)]


def is_judged(value: object) -> bool:
    return isinstance(value, Judged)


__all__ = ["Judged", "is_judged", "judged_or"]
