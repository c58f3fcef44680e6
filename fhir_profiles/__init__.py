"""Belgian FHIR profile rules: pure checks that return ``list[Issue]``; no I/O (DESIGN.md 3)."""

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
    nihdi_qualification,
    normalise_rid,
    normalise_ssin,
)
from fhir_profiles.issues import Issue, Severity
from fhir_profiles.medication_dispense import ValidatedDispense, validate_medication_dispense
from fhir_profiles.medication_request import (
    ValidatedPrescription,
    validate_medication_request,
)
from fhir_profiles.qualifications import is_prescriber_qualification, profession_of
from fhir_profiles.systems import normalise_system

__all__ = [
    "RID_PATTERN",
    "Issue",
    "Severity",
    "ValidatedDispense",
    "ValidatedPrescription",
    "add_months",
    "brussels_date",
    "default_validity_end",
    "is_prescriber_qualification",
    "is_valid_cbe",
    "is_valid_cnk",
    "is_valid_nihdi_professional",
    "is_valid_ssin",
    "max_validity_end",
    "new_rid",
    "nihdi_qualification",
    "normalise_rid",
    "normalise_ssin",
    "normalise_system",
    "profession_of",
    "systems",
    "validate_medication_dispense",
    "validate_medication_request",
]
