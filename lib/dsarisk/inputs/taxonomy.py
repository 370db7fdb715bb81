"""The risk taxonomy: which modules a year assesses, in which order, and how each is named.

Every platform cuts its systemic risks differently (five modules, twelve, one statement per
harm), so the taxonomy is data: ``assessment.yaml`` lists the modules in report order, each
``{id, title, short, notebook}`` or a bare id. :class:`Taxonomy` is the one place in code
that holds a module's identity; everything else asks it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

MAX_MODULES = 60
SLUG = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"


class ModuleEntry(BaseModel):
    """One module as ``assessment.yaml`` declares it; a bare id string means ``{id: <id>}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, StringConstraints(pattern=SLUG, max_length=80)]
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] | None = None
    short: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=16)] | None = None
    # a plain file name, looked up in the year's folder, then in notebooks/: never a path elsewhere
    notebook: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.ipynb$")] | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_id(cls, data: Any) -> Any:
        return {"id": data} if isinstance(data, str) else data


ModuleEntries = Annotated[list[ModuleEntry], Field(min_length=1, max_length=MAX_MODULES)]


def check_entries(entries: list[ModuleEntry]) -> list[ModuleEntry]:
    """Ids and declared short labels must each name one module."""
    for what, values in (("module id", [e.id for e in entries]), ("short label", [e.short for e in entries if e.short])):
        twice = [value for value, count in Counter(values).items() if count > 1]
        if twice:
            raise ValueError(f"{what}(s) declared more than once: {', '.join(twice)}")
    return entries


@dataclass(frozen=True)
class ModuleIdentity:
    """Who a module is: id, title, short label (heatmaps, legends), 1-based position in the
    report, and the notebook it names for itself (None: the module template)."""

    id: str
    title: str
    short: str
    order: int
    notebook: str | None = None


def _derived_short(module_id: str) -> str:
    """``hate-speech`` -> ``HS``; a one-word id stays as it is."""
    parts = module_id.split("-")
    return "".join(part[0] for part in parts).upper() if len(parts) > 1 else module_id


@dataclass(frozen=True)
class Taxonomy:
    """The modules of a year, in report order."""

    modules: tuple[ModuleIdentity, ...]

    @classmethod
    def from_entries(cls, entries: Sequence[ModuleEntry], titles: Mapping[str, str]) -> Taxonomy:
        """The identities of the entries ``titles`` holds (the loaded modules): a title the
        assessment does not give comes from the module file, a short label from the id (the
        id itself where two derived labels would clash)."""
        derived = Counter(_derived_short(e.id) for e in entries if not e.short)
        taken = {e.short for e in entries if e.short}

        def short_of(entry: ModuleEntry) -> str:
            if entry.short:
                return entry.short
            short = _derived_short(entry.id)
            return short if derived[short] == 1 and short not in taken else entry.id

        return cls(tuple(ModuleIdentity(e.id, e.title or titles[e.id], short_of(e), order, e.notebook)
                         for order, e in enumerate(entries, start=1) if e.id in titles))

    def __iter__(self) -> Iterator[ModuleIdentity]:
        return iter(self.modules)

    def __len__(self) -> int:
        return len(self.modules)

    def __getitem__(self, module_id: str) -> ModuleIdentity:
        for identity in self.modules:
            if identity.id == module_id:
                return identity
        raise KeyError(module_id)

    @property
    def ids(self) -> list[str]:
        return [identity.id for identity in self.modules]


__all__ = ["MAX_MODULES", "ModuleEntries", "ModuleEntry", "ModuleIdentity", "Taxonomy", "check_entries"]
