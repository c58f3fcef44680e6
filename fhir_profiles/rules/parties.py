"""Who: the patient by SSIN, the prescriber by NIHDI number (domain ID-1..ID-8, ID-20..ID-22).

Where the prescriber's number sits (an identifier, or a contained Practitioner or
PractitionerRole) is ``fhir_profiles.prescriber``; this module judges the number.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from fhir_profiles import systems
from fhir_profiles._json import canonical_system, is_pseudonymised, obj, text
from fhir_profiles.identifiers import (
    is_valid_nihdi_professional,
    is_valid_ssin,
    normalise_ssin,
)
from fhir_profiles.issues import Issue
from fhir_profiles.nihdi import may_prescribe
from fhir_profiles.prescriber import locate_prescriber

_SUBJECT: Final = "MedicationRequest.subject"


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
    """RX-19, ID-6..ID-8, ID-20..ID-22: the prescriber's NIHDI number, wherever the prescription
    names it (``fhir_profiles.prescriber``), has 11 digits, valid check digits and a prescriber's
    qualification. Issues point at the element that carries the number.

    The 8-digit deprecated form is refused here (ID-6): a new prescription carries the full number,
    and a midwife's right to prescribe shows only in her competence code (ID-8). Who prescribes
    is ``nihdi.may_prescribe``. ``check_digit`` switches the ID-7 check (modulo 97 or 89) off.
    """
    found = locate_prescriber(body)
    if isinstance(found, Issue):
        return [found]
    return _prescriber_number_issues(text(found.value), found.path, check_digit=check_digit)


def _prescriber_number_issues(value: str | None, path: str, *, check_digit: bool) -> list[Issue]:
    issues: list[Issue] = []
    if not value:
        issues.append(Issue("required", path, "the prescriber NIHDI number is required", "ID-6"))
    elif not _eleven_digits(value):
        message = "a prescriber NIHDI number has 11 digits, no punctuation"
        issues.append(Issue("value", path, message, "ID-6"))
    elif not is_valid_nihdi_professional(value, check_digit=check_digit):
        issues.append(Issue("value", path, "the NIHDI check digits do not match", "ID-7"))
    elif not may_prescribe(value):
        message = "the NIHDI number is not a prescriber's (physician, dentist, prescribing midwife)"
        issues.append(Issue("business-rule", path, message, "ID-8"))
    return issues
