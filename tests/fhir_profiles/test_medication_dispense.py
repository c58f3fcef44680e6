"""The dispense profile (RX-25, RX-23, RX-24, RX-4, ID-2, ID-15): each rule names its element."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fhir_profiles import ValidatedDispense, systems, validate_medication_dispense
from tests.dispenses.factories import dispense

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
RID = "BEP1LASIX001"


def check(**overrides: Any) -> ValidatedDispense | list[Any]:
    body = dispense(rid=RID, **{"whenHandedOver": NOW.isoformat(), **overrides})
    return validate_medication_dispense(body, now=NOW)


def expressions(result: ValidatedDispense | list[Any]) -> list[tuple[str, str]]:
    assert isinstance(result, list), result
    return [(issue.expression, issue.rule) for issue in result]


def test_RX_25_valid_dispense_by_rid() -> None:
    result = check()
    assert isinstance(result, ValidatedDispense)
    assert (result.prescription_rid, result.prescription_id, result.cnk) == (RID, None, "1234567")
    assert result.resource["status"] == "completed"


def test_RX_25_valid_dispense_by_reference_and_lower_case_rid() -> None:
    by_reference = validate_medication_dispense(
        dispense(prescription_id="abc123", whenHandedOver=NOW.isoformat()), now=NOW
    )
    assert isinstance(by_reference, ValidatedDispense)
    assert by_reference.prescription_id == "abc123"
    lower = check(
        authorizingPrescription=[{"identifier": {"system": systems.RID, "value": RID.lower()}}]
    )
    assert isinstance(lower, ValidatedDispense)
    assert lower.prescription_rid == RID


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"authorizingPrescription": None},
            ("MedicationDispense.authorizingPrescription", "RX-25"),
        ),
        (
            {"authorizingPrescription": [{"reference": "Patient/1"}]},
            ("MedicationDispense.authorizingPrescription[0].reference", "RX-25"),
        ),
        (
            {"authorizingPrescription": [{"identifier": {"system": systems.RID, "value": "X1"}}]},
            ("MedicationDispense.authorizingPrescription[0].identifier", "RX-4"),
        ),
        ({"whenHandedOver": None}, ("MedicationDispense.whenHandedOver", "RX-25")),
        ({"whenHandedOver": "2026-11-25"}, ("MedicationDispense.whenHandedOver", "RX-25")),
        (
            {"whenHandedOver": (NOW + timedelta(hours=1)).isoformat()},
            ("MedicationDispense.whenHandedOver", "RX-25"),
        ),
        ({"quantity": {"value": 0}}, ("MedicationDispense.quantity.value", "RX-24")),
        ({"quantity": None}, ("MedicationDispense.quantity.value", "RX-24")),
        (
            {"medicationCodeableConcept": {"coding": [{"system": systems.CNK, "code": "12a"}]}},
            ("MedicationDispense.medicationCodeableConcept.coding[0].code", "ID-15"),
        ),
        (
            {"medicationCodeableConcept": {"coding": [{"system": "urn:x", "code": "1"}]}},
            ("MedicationDispense.medicationCodeableConcept.coding", "RX-23"),
        ),
        (
            {"medicationCodeableConcept": {"text": " "}},
            ("MedicationDispense.medicationCodeableConcept.coding", "RX-23"),
        ),
        (
            {
                "medicationReference": {"reference": "Medication/1"},
                "medicationCodeableConcept": None,
            },
            ("MedicationDispense.medicationReference", "RX-25"),
        ),
        ({"status": "cancelled"}, ("MedicationDispense.status", "RX-7")),
        (
            {"subject": {"identifier": {"system": systems.SSIN, "value": "85073003329"}}},
            ("MedicationDispense.subject.identifier.value", "ID-2"),
        ),
    ],
    ids=[
        "RX_25_no_prescription",
        "RX_25_reference_not_a_prescription",
        "RX_4_not_a_rid",
        "RX_25_no_date",
        "RX_25_date_without_time",
        "RX_25_future",
        "RX_24_zero",
        "RX_24_missing",
        "ID_15_cnk_digits",
        "RX_23_not_cnk",
        "RX_23_empty_text",
        "RX_25_medication_reference",
        "RX_7_status",
        "ID_2_subject_check_digits",
    ],
)
def test_dispense_rules(overrides: dict[str, Any], expected: tuple[str, str]) -> None:
    assert expected in expressions(check(**overrides))


def test_RX_22_magistral_dispense_may_be_text_only() -> None:
    result = check(medicationCodeableConcept={"text": "Vaseline 50 g, q.s. ad 100 g"})
    assert isinstance(result, ValidatedDispense)
    assert result.cnk is None


def test_structure_errors_and_wrong_type() -> None:
    assert expressions(validate_medication_dispense({"resourceType": "Patient"}, now=NOW)) == [
        ("MedicationDispense", "")
    ]
    broken = check(quantity={"value": "many"})
    assert isinstance(broken, list)
    assert broken[0].expression.startswith("MedicationDispense.quantity")
