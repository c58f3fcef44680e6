"""How the medicine is taken: ``dosageInstruction`` (BeDosage, RX-19).

A dosage is free text, structured, or both: the hl7-be medication guide's examples give only
structured dosages (``timing.code`` QOD, ``timing.repeat`` with a frequency, period and bounds,
``doseAndRate`` with an ordered dose), so ``text`` is never required. What is checked is what a
pharmacy's software needs to read the structure right: FHIR's Timing invariants (tim-1..tim-10)
and the required UnitsOfTime binding, which fhir.resources does not enforce, numbers sent as JSON
numbers, and each doseAndRate entry carrying a dose or a rate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from fhir_profiles._json import blank, items, obj
from fhir_profiles.issues import Issue

_DOSAGE: Final = "MedicationRequest.dosageInstruction"
# FHIR R4 UnitsOfTime (required binding of Timing.repeat.durationUnit and periodUnit).
UNITS_OF_TIME: Final = frozenset({"s", "min", "h", "d", "wk", "mo", "a"})
# tim-9: an offset from a meal makes no sense for "at a meal" (C, CM, CD, CV).
_MEAL_EVENTS: Final = frozenset({"C", "CM", "CD", "CV"})
_NUMBERS: Final = (
    "count",
    "countMax",
    "duration",
    "durationMax",
    "frequency",
    "frequencyMax",
    "period",
    "periodMax",
    "offset",
)
_DOSES_AND_RATES: Final = ("doseQuantity", "doseRange", "rateRatio", "rateRange", "rateQuantity")
# (element, what it needs, FHIR invariant): an element present without the other is meaningless.
_NEEDS: Final = (
    ("duration", "durationUnit", "tim-1"),
    ("period", "periodUnit", "tim-2"),
    ("periodMax", "period", "tim-6"),
    ("durationMax", "duration", "tim-7"),
    ("countMax", "count", "tim-8"),
    ("offset", "when", "tim-9"),
)


def rule_dosage(body: Mapping[str, Any]) -> list[Issue]:
    """RX-19: ``dosageInstruction`` 1..*, each saying how or when, its structure readable."""
    instructions = items(body.get("dosageInstruction"))
    if not instructions:
        message = "a dosage instruction is required"
        return [Issue("required", _DOSAGE, message, "RX-19")]
    issues: list[Issue] = []
    for i, raw in enumerate(instructions):
        dosage = obj(raw) or {}
        path = f"{_DOSAGE}[{i}]"
        if not _says_something(dosage):
            message = "a dosage instruction needs a text, a timing, a doseAndRate or asNeeded"
            issues.append(Issue("required", path, message, "RX-19"))
        issues += _timing_issues(obj(dosage.get("timing")) or {}, f"{path}.timing")
        issues += _dose_issues(dosage.get("doseAndRate"), f"{path}.doseAndRate")
    return issues


def _says_something(dosage: Mapping[str, Any]) -> bool:
    """Route, site or method alone say neither how much nor when."""
    return (
        not blank(dosage.get("text"))
        or not blank(dosage.get("patientInstruction"))
        or dosage.get("timing") is not None
        or bool(items(dosage.get("doseAndRate")))
        or dosage.get("asNeededBoolean") is True
        or dosage.get("asNeededCodeableConcept") is not None
        or dosage.get("maxDosePerPeriod") is not None
    )


def _timing_issues(timing: Mapping[str, Any], path: str) -> list[Issue]:
    repeat = obj(timing.get("repeat"))
    if repeat is None:
        return []
    path = f"{path}.repeat"
    issues = [
        Issue("value", f"{path}.{name}", f"{name} must be a number", "RX-19")
        for name in _NUMBERS
        if name in repeat and not _is_number(repeat[name])
    ]
    for name, invariant in (("duration", "tim-4"), ("period", "tim-5")):
        if _is_number(repeat.get(name)) and repeat[name] < 0:
            message = f"{name} cannot be negative (FHIR {invariant})"
            issues.append(Issue("invariant", f"{path}.{name}", message, "RX-19"))
    for unit in ("durationUnit", "periodUnit"):
        if unit in repeat and repeat[unit] not in UNITS_OF_TIME:
            message = f"{unit} must be a unit of time (s, min, h, d, wk, mo, a)"
            issues.append(Issue("code-invalid", f"{path}.{unit}", message, "RX-19"))
    for element, needed, invariant in _NEEDS:
        if element in repeat and needed not in repeat:
            message = f"{element} needs {needed} (FHIR {invariant})"
            issues.append(Issue("invariant", f"{path}.{element}", message, "RX-19"))
    if "offset" in repeat and _MEAL_EVENTS & set(items(repeat.get("when"))):
        message = "an offset cannot apply to a meal event C, CM, CD or CV (FHIR tim-9)"
        issues.append(Issue("invariant", f"{path}.offset", message, "RX-19"))
    if "timeOfDay" in repeat and "when" in repeat:
        message = "give timeOfDay or when, not both (FHIR tim-10)"
        issues.append(Issue("invariant", f"{path}.timeOfDay", message, "RX-19"))
    return issues


def _dose_issues(raw: Any, path: str) -> list[Issue]:
    issues: list[Issue] = []
    for j, item in enumerate(items(raw)):
        entry = obj(item) or {}
        entry_path = f"{path}[{j}]"
        if not any(entry.get(kind) is not None for kind in _DOSES_AND_RATES):
            message = "a doseAndRate entry needs a dose or a rate"
            issues.append(Issue("required", entry_path, message, "RX-19"))
        quantity = obj(entry.get("doseQuantity")) or {}
        if "value" in quantity and not _is_number(quantity["value"]):
            value_path = f"{entry_path}.doseQuantity.value"
            issues.append(Issue("value", value_path, "the dose must be a number", "RX-19"))
    return issues


def _is_number(value: Any) -> bool:
    """A JSON number: fhir.resources coerces the string "2" into a decimal, FHIR JSON does not."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
