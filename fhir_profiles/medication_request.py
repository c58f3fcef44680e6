"""The Belgian prescription profile (BeMedicationPrescription) for a create (domain RX-3..RX-24).

``validate_medication_request`` parses the body once with fhir.resources (structure), then runs one
small function per Belgian rule (``fhir_profiles.rules``) over the plain dict. On success it
returns the normalised dict to store; the model is discarded, never re-serialised (docs/architecture.md 9).
The RID is assigned by the gateway, not here (RX-5).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from fhir.resources.R4B.medicationrequest import MedicationRequest

from fhir_profiles import systems
from fhir_profiles._json import authored_on, canonical_system, is_pseudonymised, items, obj
from fhir_profiles.dates import brussels_date, default_validity_end, parse_fhir_day
from fhir_profiles.identifiers import normalise_ssin
from fhir_profiles.issues import Issue
from fhir_profiles.prescriber import NihdiFound, locate_prescriber
from fhir_profiles.rules.dosage import rule_dosage
from fhir_profiles.rules.order import (
    rule_authored_on,
    rule_identifier,
    rule_intent,
    rule_status,
    rule_validity,
)
from fhir_profiles.rules.parties import rule_requester, rule_subject
from fhir_profiles.rules.product import rule_medication, rule_quantity, rule_substitution
from fhir_profiles.structure import structure_issues

_MR: Final = "MedicationRequest"
# RX-24: the KMEHR default of one package.
DEFAULT_QUANTITY: Final[Mapping[str, Any]] = {"value": 1, "unit": "package"}


@dataclass(frozen=True)
class ValidatedPrescription:
    """A prescription that passed the profile, with the facts the gateway indexes."""

    # The normalised JSON dict to store: validated once, never re-serialised.
    resource: dict[str, Any]
    patient_ssin: str  # digits only; "" when the SSIN is pseudonymised (ID-21)
    requester_nihdi: str
    authored_on: datetime  # timezone-aware
    validity_start: date
    validity_end: date


def _belgian_issues(
    body: Mapping[str, Any], *, now: datetime, nihdi_check_digit: bool
) -> list[Issue]:
    """Every rule runs, so a client sees all its Belgian-profile mistakes at once."""
    return [
        *rule_identifier(body),
        *rule_status(body),
        *rule_intent(body),
        *rule_subject(body),
        *rule_requester(body, check_digit=nihdi_check_digit),
        *rule_authored_on(body, now=now),
        *rule_medication(body),
        *rule_dosage(body),
        *rule_quantity(body),
        *rule_validity(body),
        *rule_substitution(body),
    ]


def _normalise(
    body: Mapping[str, Any], *, patient_ssin: str, requester_nihdi: str, validity_end: date
) -> dict[str, Any]:
    """Canonical systems (ID-22), SSIN digits only, status active, default quantity and end.

    Copy on write: the input is never mutated. Sub-objects that need no change are shared with
    ``body``; changed ones, and the identifier list the gateway appends the RID to, are fresh.
    """
    resource = dict(body)
    resource["status"] = "active"
    resource["identifier"] = [
        {**item, "system": canonical_system(item)}
        if isinstance(item, dict) and "system" in item
        else item
        for item in items(body.get("identifier"))
    ]
    if not resource["identifier"]:
        del resource["identifier"]  # FHIR JSON forbids empty arrays

    subject = dict(body["subject"])
    identifier = subject["identifier"]
    value = patient_ssin or identifier["value"]  # a pseudonym is kept as sent (ID-21)
    subject["identifier"] = {**identifier, "system": systems.SSIN, "value": value}
    resource["subject"] = subject

    requester = dict(body["requester"])
    # The prescriber's number was checked as a professional one: emit that system (ID-20). A
    # reference to a contained Practitioner(Role) is kept as sent, and gains the identifier it
    # resolved to, so every reader finds the prescriber in ``requester.identifier``.
    requester["identifier"] = {
        **(obj(requester.get("identifier")) or {}),
        "system": systems.NIHDI_PROFESSIONAL,
        "value": requester_nihdi,
    }
    resource["requester"] = requester
    if "contained" in body:
        resource["contained"] = [_canonical_identifiers(item) for item in body["contained"]]

    concept = body["medicationCodeableConcept"]
    if "coding" in concept:
        codings = [{**coding, "system": canonical_system(coding)} for coding in concept["coding"]]
        resource["medicationCodeableConcept"] = {**concept, "coding": codings}

    dispense = dict(body["dispenseRequest"])
    if dispense.get("quantity") is None:
        dispense["quantity"] = dict(DEFAULT_QUANTITY)
    period = dict(dispense["validityPeriod"])
    if period.get("end") is None:
        period["end"] = validity_end.isoformat()
    dispense["validityPeriod"] = period
    resource["dispenseRequest"] = dispense
    return resource


def _canonical_identifiers(contained: Any) -> Any:
    """ID-22: legacy naming systems in a contained Practitioner(Role) emitted as canonical ones."""
    if not isinstance(contained, dict):
        return contained
    resource = dict(contained)
    if isinstance(resource.get("identifier"), list):
        resource["identifier"] = [
            {**item, "system": canonical_system(item)}
            if isinstance(item, dict) and "system" in item
            else item
            for item in resource["identifier"]
        ]
    practitioner = obj(resource.get("practitioner"))
    identifier = obj((practitioner or {}).get("identifier"))
    if practitioner is not None and identifier is not None and "system" in identifier:
        canonical = {**identifier, "system": canonical_system(identifier)}
        resource["practitioner"] = {**practitioner, "identifier": canonical}
    return resource


def validate_medication_request(
    body: dict[str, Any], *, now: datetime, nihdi_check_digit: bool = True
) -> ValidatedPrescription | list[Issue]:
    """Check a prescription for create against FHIR R4 and the Belgian profile.

    Returns the normalised prescription, or every issue found; it never raises on bad input.
    Structure is checked first; the Belgian rules run only on a structurally valid body.
    ``now`` must be timezone-aware. ``nihdi_check_digit`` switches the ID-7 check (modulo 97 or 89).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if not isinstance(body, dict) or body.get("resourceType") != _MR:
        return [Issue("structure", _MR, "the resource must be a MedicationRequest")]
    # RX-6: status is 1..1 in FHIR but may be left out on create; it becomes active.
    parsed = body if body.get("status") is not None else {**body, "status": "active"}
    issues = structure_issues(MedicationRequest, _MR, parsed)
    if issues:
        return issues
    issues = _belgian_issues(body, now=now, nihdi_check_digit=nihdi_check_digit)
    if issues:
        return issues

    # Every rule passed, so the elements read below exist and are well formed.
    identifier = body["subject"]["identifier"]
    patient_ssin = "" if is_pseudonymised(identifier) else normalise_ssin(identifier["value"])
    prescriber = locate_prescriber(body)
    assert isinstance(prescriber, NihdiFound)
    requester_nihdi: str = prescriber.value
    created = authored_on(body)
    period = body["dispenseRequest"]["validityPeriod"]
    validity_start = parse_fhir_day(period["start"])
    # Guaranteed by rule_authored_on and rule_validity; the asserts narrow the types.
    assert created is not None
    assert validity_start is not None
    validity_end = (
        parse_fhir_day(period["end"])
        if period.get("end") is not None
        else default_validity_end(brussels_date(created))
    )
    assert validity_end is not None
    resource = _normalise(
        body,
        patient_ssin=patient_ssin,
        requester_nihdi=requester_nihdi,
        validity_end=validity_end,
    )
    return ValidatedPrescription(
        resource=resource,
        patient_ssin=patient_ssin,
        requester_nihdi=requester_nihdi,
        authored_on=created,
        validity_start=validity_start,
        validity_end=validity_end,
    )
