"""Whose data a resource is: one reading of the patient's SSIN for every resource type (ID-1,
ID-5, ID-21, ID-22), the one the access decisions and the search columns use."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_profiles import systems
from fhir_profiles.patients import patient_ssin_of

SSIN = "85073003328"
PSEUDONYMISED = {
    "url": systems.PSEUDONYMIZATION_EXTENSION,
    "extension": [{"url": "format", "valueCode": "direct"}],
}


def about(resource_type: str, identifier: dict[str, Any]) -> dict[str, Any]:
    """A resource of ``resource_type`` naming its patient where FHIR R4 puts it."""
    element = "subject" if resource_type.startswith("Medication") else "patient"
    return {"resourceType": resource_type, element: {"identifier": identifier}}


TYPES = ["MedicationRequest", "MedicationDispense", "Consent", "Claim", "ClaimResponse"]


@pytest.mark.parametrize("resource_type", TYPES)
def test_ID_5_printed_ssin_names_the_patient_as_digits(resource_type: str) -> None:
    resource = about(resource_type, {"system": systems.SSIN, "value": "85.07.30-033.28"})
    assert patient_ssin_of(resource) == SSIN


@pytest.mark.parametrize("resource_type", TYPES)
def test_ID_22_legacy_ssin_system_names_the_patient(resource_type: str) -> None:
    resource = about(resource_type, {"system": systems.LEGACY_SSIN, "value": SSIN})
    assert patient_ssin_of(resource) == SSIN


@pytest.mark.parametrize("resource_type", TYPES)
def test_ID_21_pseudonymised_value_names_no_ssin_even_when_it_looks_like_one(
    resource_type: str,
) -> None:
    identifier = {"system": systems.SSIN, "value": SSIN, "_value": {"extension": [PSEUDONYMISED]}}
    assert patient_ssin_of(about(resource_type, identifier)) is None


@pytest.mark.parametrize(
    "identifier",
    [
        {"system": systems.SSIN, "value": "85073003329"},  # check digits wrong (ID-2)
        {"system": systems.NIHDI_PROFESSIONAL, "value": SSIN},  # not an SSIN system
        {"value": SSIN},  # no system
        {"system": systems.SSIN, "value": 85073003328},  # not a string
    ],
)
def test_ID_1_only_a_valid_ssin_identifier_names_the_patient(identifier: dict[str, Any]) -> None:
    assert patient_ssin_of(about("Claim", identifier)) is None


def test_the_patient_is_read_from_the_element_of_the_resource_type() -> None:
    # A prescription's patient is its subject: a "patient" element there names no one.
    misplaced = {
        "resourceType": "MedicationRequest",
        "patient": {"identifier": {"system": systems.SSIN, "value": SSIN}},
    }
    assert patient_ssin_of(misplaced) is None
    assert patient_ssin_of({"resourceType": "Consent", "patient": "Patient/1"}) is None
