"""Who: the patient by SSIN, the prescriber by NIHDI number (domain ID-1..ID-8, ID-20..ID-22)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from fhir_profiles import systems
from fhir_profiles._json import canonical_system, is_pseudonymised, obj, text
from fhir_profiles.identifiers import (
    is_valid_nihdi_professional,
    is_valid_ssin,
    nihdi_qualification,
    normalise_ssin,
)
from fhir_profiles.issues import Issue
from fhir_profiles.qualifications import is_prescriber_qualification

_SUBJECT: Final = "MedicationRequest.subject"
_REQUESTER: Final = "MedicationRequest.requester"
# ID-20/ID-22: the generic NIHDI system is accepted for a prescriber too (the legacy
# nihdi-practitioner alias is folded into nihdi-professional by normalise_system).
PRESCRIBER_SYSTEMS: Final = frozenset({systems.NIHDI_PROFESSIONAL, systems.NIHDI})


def _eleven_digits(value: str) -> bool:
    return len(value) == 11 and value.isascii() and value.isdigit()


def rule_subject(body: Mapping[str, Any]) -> list[Issue]:
    """ID-1..ID-5, ID-21, ID-22: the patient is identified by an SSIN with valid check digits.

    A pseudonymised SSIN (ID-21) skips the digit check. A literal reference alone is refused: the
    gateway indexes and authorises by SSIN.
    """
    subject = obj(body.get("subject"))
    if subject is None:
        return [Issue("required", _SUBJECT, "the patient is required", "RX-19")]
    identifier = obj(subject.get("identifier"))
    if identifier is None:
        message = "the patient must be identified by an SSIN identifier"
        return [Issue("required", f"{_SUBJECT}.identifier", message, "RX-19")]
    issues: list[Issue] = []
    if canonical_system(identifier) != systems.SSIN:
        message = "the patient identifier must use the SSIN naming system"
        issues.append(Issue("value", f"{_SUBJECT}.identifier.system", message, "ID-20"))
    value = text(identifier.get("value"))
    path = f"{_SUBJECT}.identifier.value"
    if not value:
        issues.append(Issue("required", path, "the SSIN is required", "ID-1"))
    elif not is_pseudonymised(identifier):
        digits = normalise_ssin(value)
        if not _eleven_digits(digits):
            issues.append(Issue("value", path, "an SSIN has 11 digits", "ID-1"))
        elif not is_valid_ssin(digits):
            issues.append(Issue("value", path, "the SSIN check digits do not match", "ID-2"))
    return issues


def rule_requester(body: Mapping[str, Any], *, check_digit: bool = True) -> list[Issue]:
    """ID-6..ID-8, ID-22: an 11-digit NIHDI number, check digits, a prescriber qualification.

    The 8-digit deprecated form is refused here: without the qualification suffix nobody can tell
    a physician from a physiotherapist (ID-8). ``check_digit`` switches the unverified ID-7 check.
    """
    requester = obj(body.get("requester"))
    if requester is None:
        return [Issue("required", _REQUESTER, "the prescriber is required", "RX-19")]
    identifier = obj(requester.get("identifier"))
    if identifier is None:
        message = "the prescriber must be identified by an NIHDI identifier"
        return [Issue("required", f"{_REQUESTER}.identifier", message, "RX-19")]
    issues: list[Issue] = []
    if canonical_system(identifier) not in PRESCRIBER_SYSTEMS:
        message = "the prescriber identifier must use the NIHDI professional naming system"
        issues.append(Issue("value", f"{_REQUESTER}.identifier.system", message, "ID-20"))
    value = text(identifier.get("value"))
    path = f"{_REQUESTER}.identifier.value"
    if not value:
        issues.append(Issue("required", path, "the prescriber NIHDI number is required", "ID-6"))
    elif not _eleven_digits(value):
        message = "a prescriber NIHDI number has 11 digits, no punctuation"
        issues.append(Issue("value", path, message, "ID-6"))
    elif not is_valid_nihdi_professional(value, check_digit=check_digit):
        issues.append(Issue("value", path, "the NIHDI check digits do not match", "ID-7"))
    elif not is_prescriber_qualification(nihdi_qualification(value) or ""):
        message = "the NIHDI qualification is not one of a prescriber (physician, dentist, midwife)"
        issues.append(Issue("business-rule", path, message, "ID-8"))
    return issues
