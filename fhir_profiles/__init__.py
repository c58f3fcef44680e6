"""Belgian FHIR profile rules: pure checks that return ``list[Issue]``; no I/O (docs/architecture.md 3)."""

from fhir_profiles import systems
from fhir_profiles.dates import (
    add_months,
    brussels_date,
    default_validity_end,
    max_validity_end,
)
from fhir_profiles.identifiers import (
    RID_PATTERN,
    is_valid_cbe,
    is_valid_cnk,
    is_valid_nihdi_professional,
    is_valid_ssin,
    new_rid,
    normalise_rid,
    normalise_ssin,
)
from fhir_profiles.issues import Issue, Severity
from fhir_profiles.medication_dispense import ValidatedDispense, validate_medication_dispense
from fhir_profiles.medication_request import (
    ValidatedPrescription,
    validate_medication_request,
)
from fhir_profiles.nihdi import (
    NihdiNumber,
    Profession,
    may_prescribe,
    parse_professional,
    same_person,
)
from fhir_profiles.systems import normalise_system

__all__ = [
    "RID_PATTERN",
    "Issue",
    "NihdiNumber",
    "Profession",
    "Severity",
    "ValidatedDispense",
    "ValidatedPrescription",
    "add_months",
    "brussels_date",
    "default_validity_end",
    "is_valid_cbe",
    "is_valid_cnk",
    "is_valid_nihdi_professional",
    "is_valid_ssin",
    "max_validity_end",
    "may_prescribe",
    "new_rid",
    "normalise_rid",
    "normalise_ssin",
    "normalise_system",
    "parse_professional",
    "same_person",
    "systems",
    "validate_medication_dispense",
    "validate_medication_request",
]
