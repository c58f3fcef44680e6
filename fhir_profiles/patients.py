"""Whose data a resource is: the patient's SSIN, read the same way for every resource type.

Prescriptions and dispenses name the patient in ``subject``, consents and attestations in
``patient`` (FHIR R4). Only an SSIN identifier counts (legacy system aliases accepted, ID-22),
stored and compared as its 11 digits (ID-1, ID-5); a pseudonymised patient (ID-21), another
system or an invalid number names no SSIN.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from fhir_profiles import systems
from fhir_profiles._json import is_pseudonymised
from fhir_profiles.identifiers import is_valid_ssin, normalise_ssin

# The element that references the patient, per resource type (FHIR R4).
PATIENT_ELEMENT: Final[Mapping[str, str]] = {
    "MedicationRequest": "subject",
    "MedicationDispense": "subject",
    "Consent": "patient",
    "Claim": "patient",
    "ClaimResponse": "patient",
    "Communication": "subject",  # feedback (RX-8): the prescription's patient
}


def patient_ssin_of(resource: Mapping[str, Any]) -> str | None:
    """The SSIN (digits only) of the patient ``resource`` is about, or ``None`` when it names
    none: pseudonymised (ID-21), another identifier system, an invalid number, no patient, or a
    resource type without a patient element here."""
    element = PATIENT_ELEMENT.get(str(resource.get("resourceType")))
    reference = resource.get(element) if element else None
    identifier = reference.get("identifier") if isinstance(reference, dict) else None
    if not isinstance(identifier, dict) or is_pseudonymised(identifier):
        return None
    system, value = identifier.get("system"), identifier.get("value")
    if not isinstance(system, str) or not isinstance(value, str):
        return None
    if systems.normalise_system(system) != systems.SSIN:
        return None
    digits = normalise_ssin(value)
    return digits if is_valid_ssin(digits) else None
