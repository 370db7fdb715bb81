"""Assessment inputs: one YAML file per year and per risk module, validated on load.

Every problem is reported as an :class:`~dsarisk.exceptions.InputError` naming the file,
the module and the field. The package is split by job: ``registries`` (what inputs are
checked against), ``schema`` (the file shapes), ``markers`` (the TO UPDATE scan),
``crossyear`` (checks against the previous year), ``sources`` (counts from external data),
``load`` (reading a year), ``taxonomy`` (the modules and their names) and ``judged`` (ratings
given as a level with a rationale).
"""

from .load import YearInputs, available_years, load_year
from .markers import TO_UPDATE
from .judged import Judged, is_judged
from .registries import ART34_1, ART34_2_FACTORS, ART35_1
from .taxonomy import ModuleIdentity, Taxonomy
from .schema import (
    AssessmentInput,
    Measure,
    ModuleInput,
    Period,
    Proxy,
    Published,
)

__all__ = [
    "ART34_1", "ART34_2_FACTORS", "ART35_1", "TO_UPDATE", "AssessmentInput", "Judged", "Measure", "ModuleIdentity",
    "ModuleInput", "Period", "Proxy", "Published", "Taxonomy", "YearInputs", "available_years", "is_judged", "load_year",
]
