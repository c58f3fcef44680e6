"""The Belgian dispense record (BeMedicationDispense, domain RX-25) for a create.

``validate_medication_dispense`` checks FHIR R4 structure with fhir.resources, then the rules a
pharmacy's dispense must meet on its own: which prescription (``authorizingPrescription``: a
reference ``MedicationRequest/{id}``, the RID as a logical reference, or both), the delivered
product (RX-23: the CNK the pharmacist chose; RX-22: a magistral preparation may be uncoded text),
the quantity (RX-24) and when it was handed over (RX-25 ``dispenseDate`` 1..1, never in the future,
and an event's year, ``event_time``).
Rules that need the prescription (same patient, magistral or not) are the gateway's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from fhir.resources.R4B.medicationdispense import MedicationDispense

from fhir_profiles import systems
from fhir_profiles._json import blank, canonical_system, items, obj, text
from fhir_profiles.dates import parse_fhir_datetime
from fhir_profiles.event_time import RANGE_TEXT, is_event_time
from fhir_profiles.identifiers import is_valid_cnk, is_valid_ssin, normalise_rid, normalise_ssin
from fhir_profiles.issues import Issue
from fhir_profiles.structure import structure_issues

_MD: Final = "MedicationDispense"
_PRESCRIPTION: Final = "MedicationDispense.authorizingPrescription"
_MEDICATION: Final = "MedicationDispense.medicationCodeableConcept"
_REFERENCE: Final = re.compile(r"^MedicationRequest/([A-Za-z0-9\-.]{1,64})$")
# A pharmacy's clock may run a little ahead of ours.
CLOCK_SKEW: Final = timedelta(minutes=5)


@dataclass(frozen=True)
class ValidatedDispense:
    resource: dict[str, Any]  # normalised: canonical systems, status completed
    prescription_id: str | None  # from a literal reference
    prescription_rid: str | None  # from the RID (logical reference), with or without a reference
    handed_over: datetime
    cnk: str | None  # None: uncoded (magistral, RX-22)
    patient_ssin: str | None  # when the dispense names the patient (checked by the gateway)


def _prescription(body: Mapping[str, Any]) -> tuple[list[Issue], str | None, str | None]:
    """RX-25: exactly one prescription, by reference, by RID or by both (what pharmacy software
    sends after a fetch by RID; the gateway checks that the RID is the referenced one's)."""
    links = items(body.get("authorizingPrescription"))
    if len(links) != 1:
        message = "name exactly one prescription (a reference or its RID)"
        return [Issue("required", _PRESCRIPTION, message, "RX-25")], None, None
    link = obj(links[0]) or {}
    reference = text(link.get("reference"))
    identifier = obj(link.get("identifier"))
    if reference is None and identifier is None:
        message = "give the prescription's reference or its RID identifier"
        return [Issue("required", f"{_PRESCRIPTION}[0]", message, "RX-25")], None, None
    issues: list[Issue] = []
    prescription_id = rid = None
    if reference is not None:
        match = _REFERENCE.fullmatch(reference)
        if match is None:
            message = "the reference must be MedicationRequest/{id}"
            issues.append(Issue("value", f"{_PRESCRIPTION}[0].reference", message, "RX-25"))
        else:
            prescription_id = match.group(1)
    if identifier is not None:
        # Read even beside a reference: it is the proof the pharmacy holds (RX-17.1), and a typo
        # must be a 422, not a silent fall-back on the network rules.
        value = text(identifier.get("value"))
        rid = normalise_rid(value) if value else None
        if canonical_system(identifier) != systems.RID or rid is None:
            message = "the identifier must be the prescription's RID (BEP followed by 9 characters)"
            issues.append(Issue("value", f"{_PRESCRIPTION}[0].identifier", message, "RX-4"))
    if issues:
        return issues, None, None
    return [], prescription_id, rid


def _medication(body: Mapping[str, Any]) -> tuple[list[Issue], str | None]:
    """RX-23: the delivered product as one CNK; RX-22: or, for a magistral preparation, text."""
    if body.get("medicationReference") is not None:
        message = "medicationReference is not supported: code the delivered product inline"
        return [Issue("not-supported", f"{_MD}.medicationReference", message, "RX-25")], None
    concept = obj(body.get("medicationCodeableConcept"))
    if concept is None:
        return [Issue("required", _MEDICATION, "the delivered product is required", "RX-25")], None
    codings = items(concept.get("coding"))
    if not codings:
        if blank(concept.get("text")):
            message = "give the delivered product's CNK, or the magistral preparation as text"
            return [Issue("required", f"{_MEDICATION}.coding", message, "RX-23")], None
        return [], None
    cnks = [c for c in codings if isinstance(c, dict) and canonical_system(c) == systems.CNK]
    if len(cnks) != 1:
        message = "the delivered product is coded with exactly one CNK"
        return [Issue("code-invalid", f"{_MEDICATION}.coding", message, "RX-23")], None
    code = text(cnks[0].get("code"))
    if code is None or not is_valid_cnk(code):
        index = codings.index(cnks[0])
        path = f"{_MEDICATION}.coding[{index}].code"
        return [Issue("value", path, "a CNK code has 7 digits", "ID-15")], None
    return [], code


def _quantity(body: Mapping[str, Any]) -> list[Issue]:
    """RX-24: how many packages were delivered: a number above 0."""
    quantity = obj(body.get("quantity"))
    path = f"{_MD}.quantity.value"
    if quantity is None or quantity.get("value") is None:
        return [Issue("required", path, "the delivered quantity is required", "RX-24")]
    value = quantity["value"]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return [Issue("value", path, "the quantity must be a number", "RX-24")]
    if value <= 0:
        return [Issue("value", path, "the quantity must be greater than 0", "RX-24")]
    return []


def _handed_over(body: Mapping[str, Any], now: datetime) -> tuple[list[Issue], datetime | None]:
    """RX-25: the dispense date, a full dateTime with a zone, not in the future."""
    path = f"{_MD}.whenHandedOver"
    raw = text(body.get("whenHandedOver"))
    if raw is None:
        return [
            Issue("required", path, "when the product was handed over is required", "RX-25")
        ], None
    moment = parse_fhir_datetime(raw)
    if moment is None:
        message = "whenHandedOver needs a date, a time and a zone"
        return [Issue("value", path, message, "RX-25")], None
    if not is_event_time(moment):
        return [Issue("value", path, f"whenHandedOver is a date {RANGE_TEXT}", "RX-25")], None
    if moment > now + CLOCK_SKEW:
        return [Issue("value", path, "whenHandedOver is in the future", "RX-25")], None
    return [], moment


def _status(body: Mapping[str, Any]) -> list[Issue]:
    """A dispense is recorded once delivered: ``completed`` (or left out); undo is ``$undo``."""
    status = body.get("status")
    if status is None or status == "completed":
        return []
    message = "a dispense is created completed; use $undo to withdraw one"
    return [Issue("value", f"{_MD}.status", message, "RX-7")]


def _subject(body: Mapping[str, Any]) -> tuple[list[Issue], str | None]:
    """The patient may be named (the gateway fills it from the prescription): then by SSIN."""
    subject = obj(body.get("subject"))
    if subject is None:
        return [], None
    identifier = obj(subject.get("identifier")) or {}
    value = text(identifier.get("value"))
    path = f"{_MD}.subject.identifier"
    if canonical_system(identifier) != systems.SSIN or not value:
        message = "the patient is identified by an SSIN identifier"
        return [Issue("value", path, message, "ID-20")], None
    digits = normalise_ssin(value)
    if not is_valid_ssin(digits):
        return [Issue("value", f"{path}.value", "the SSIN check digits do not match", "ID-2")], None
    return [], digits


def validate_medication_dispense(
    body: dict[str, Any], *, now: datetime
) -> ValidatedDispense | list[Issue]:
    """Check a dispense for create; every issue at once, never raises on bad input."""
    if not isinstance(body, dict) or body.get("resourceType") != _MD:
        return [Issue("structure", _MD, "the resource must be a MedicationDispense")]
    parsed = body if body.get("status") is not None else {**body, "status": "completed"}
    issues = structure_issues(MedicationDispense, _MD, parsed)
    if issues:
        return issues
    link_issues, prescription_id, rid = _prescription(body)
    medication_issues, cnk = _medication(body)
    time_issues, handed_over = _handed_over(body, now)
    subject_issues, ssin = _subject(body)
    issues = [
        *_status(body),
        *link_issues,
        *medication_issues,
        *_quantity(body),
        *time_issues,
        *subject_issues,
    ]
    if issues:
        return issues
    assert handed_over is not None
    resource = dict(body)
    resource["status"] = "completed"
    if cnk is not None:
        concept = body["medicationCodeableConcept"]
        codings = [{**c, "system": canonical_system(c)} for c in concept["coding"]]
        resource["medicationCodeableConcept"] = {**concept, "coding": codings}
    return ValidatedDispense(resource, prescription_id, rid, handed_over, cnk, ssin)
