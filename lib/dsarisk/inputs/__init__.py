"""Assessment inputs: one YAML file per year and per risk module, validated on load.

Every problem is reported as an :class:`~dsarisk.exceptions.InputError` naming the file,
the module and the field. The package is split by job: ``registries`` (what inputs are
checked against), ``schema`` (the file shapes), ``markers`` (the TO UPDATE scan),
``crossyear`` (checks against the previous year), ``sources`` (counts from external data)
and ``load`` (reading a year).
"""

from .load import YearInputs, available_years, load_year
from .markers import TO_UPDATE
from .registries import ART34_1, ART34_2_FACTORS, ART35_1, MODULES
from .schema import (
    AssessmentInput,
    Measure,
    ModuleInput,
    Period,
    Proxy,
    Published,
)

__all__ = [
    "ART34_1", "ART34_2_FACTORS", "ART35_1", "MODULES", "TO_UPDATE", "AssessmentInput", "Measure", "ModuleInput",
    "Period", "Proxy", "Published", "YearInputs", "available_years", "load_year",
]
