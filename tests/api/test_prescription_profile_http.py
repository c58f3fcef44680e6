"""Every Belgian prescription rule, sent over HTTP: status 422 and the element's FHIRPath.

Each case id names the domain rule it proves (``docs/domain.md``); the unit
tests of each rule are in ``tests/fhir_profiles``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from fhir_profiles import systems
from fhir_profiles.dates import brussels_date
from tests.fhir_profiles.factories import medication_request as mr
from tests.fixtures.fhir import FHIR_JSON

Body = Callable[[datetime, date], dict[str, Any]]
VP = "MedicationRequest.dispenseRequest.validityPeriod"


def validity(start: date | None, end: date | None = None) -> dict[str, Any]:
    period = {k: v.isoformat() for k, v in (("start", start), ("end", end)) if v is not None}
    return {"validityPeriod": period, "quantity": {"value": 1, "unit": "package"}}


CASES: list[tuple[str, Body, str, str]] = [
    (
        "RX_5_client_sends_a_rid",
        lambda n, d: mr(identifier=[{"system": systems.RID, "value": "BEP123456789"}]),
        "MedicationRequest.identifier[0]",
        "RX-5",
    ),
    (
        "RX_6_status_must_be_active",
        lambda n, d: mr(status="completed"),
        "MedicationRequest.status",
        "RX-6",
    ),
    (
        "RX_19_intent_must_be_order",
        lambda n, d: mr(intent="plan"),
        "MedicationRequest.intent",
        "RX-19",
    ),
    ("RX_19_subject_required", lambda n, d: mr(subject=None), "MedicationRequest.subject", ""),
    (
        "ID_1_ssin_has_eleven_digits",
        lambda n, d: mr(ssin="8507300332"),
        "MedicationRequest.subject.identifier.value",
        "ID-1",
    ),
    (
        "ID_2_ssin_check_digits",
        lambda n, d: mr(ssin="85073003329"),
        "MedicationRequest.subject.identifier.value",
        "ID-2",
    ),
    (
        "ID_20_ssin_system",
        lambda n, d: mr(subject={"identifier": {"system": "urn:x", "value": "85073003328"}}),
        "MedicationRequest.subject.identifier.system",
        "ID-20",
    ),
    (
        "RX_19_requester_required",
        lambda n, d: mr(requester=None),
        "MedicationRequest.requester",
        "RX-19",
    ),
    (
        "ID_6_nihdi_has_eleven_digits",
        lambda n, d: mr(nihdi="19234011"),
        "MedicationRequest.requester.identifier.value",
        "ID-6",
    ),
    (
        "ID_7_nihdi_check_digits",
        lambda n, d: mr(nihdi="19234012004"),
        "MedicationRequest.requester.identifier.value",
        "ID-7",
    ),
    (
        "ID_8_prescriber_qualification",
        lambda n, d: mr(nihdi="54263481527"),
        "MedicationRequest.requester.identifier.value",
        "ID-8",
    ),
    (
        "RX_19_authored_on_required",
        lambda n, d: mr(authoredOn=None),
        "MedicationRequest.authoredOn",
        "RX-19",
    ),
    (
        "RX_10_authored_on_not_in_future",
        lambda n, d: mr(authoredOn=(n + timedelta(days=2)).isoformat()),
        "MedicationRequest.authoredOn",
        "RX-10",
    ),
    (
        "RX_19_medication_required",
        lambda n, d: mr(medicationCodeableConcept=None),
        "MedicationRequest.medication[x]",
        "",
    ),
    (
        "RX_3_one_medicine_per_prescription",
        lambda n, d: mr(
            medicationCodeableConcept={
                "coding": [
                    {"system": systems.CNK, "code": "1439562"},
                    {"system": systems.CNK, "code": "2153421"},
                ]
            }
        ),
        "MedicationRequest.medicationCodeableConcept.coding[1]",
        "RX-3",
    ),
    (
        "ID_15_cnk_has_seven_digits",
        lambda n, d: mr(cnk="123"),
        "MedicationRequest.medicationCodeableConcept.coding[0].code",
        "ID-15",
    ),
    (
        "RX_19_unknown_product_code_system",
        lambda n, d: mr(medicationCodeableConcept={"coding": [{"system": "urn:x", "code": "1"}]}),
        "MedicationRequest.medicationCodeableConcept.coding[0].system",
        "RX-19",
    ),
    (
        "RX_22_magistral_needs_text",
        lambda n, d: mr(medicationCodeableConcept={"text": "  "}),
        "MedicationRequest.medicationCodeableConcept.text",
        "RX-22",
    ),
    (
        "RX_19_dosage_required",
        lambda n, d: mr(dosageInstruction=None),
        "MedicationRequest.dosageInstruction",
        "RX-19",
    ),
    (
        "RX_24_quantity_positive",
        lambda n, d: mr(dispenseRequest={**validity(d), "quantity": {"value": 0}}),
        "MedicationRequest.dispenseRequest.quantity.value",
        "RX-24",
    ),
    (
        "RX_11_validity_start_required",
        lambda n, d: mr(dispenseRequest=validity(None, d)),
        f"{VP}.start",
        "RX-11",
    ),
    (
        "RX_12_start_not_before_creation",
        lambda n, d: mr(dispenseRequest=validity(d - timedelta(days=3))),
        f"{VP}.start",
        "RX-12",
    ),
    (
        "RX_12_end_not_before_start",
        lambda n, d: mr(dispenseRequest=validity(d, d - timedelta(days=1))),
        f"{VP}.end",
        "RX-12",
    ),
    (
        "RX_12_VALIDITY_TOO_LONG",
        lambda n, d: mr(dispenseRequest=validity(d, d + timedelta(days=400))),
        f"{VP}.end",
        "RX-12",
    ),
    (
        "RX_19_substitution_is_boolean",
        lambda n, d: mr(substitution={"allowedCodeableConcept": {"text": "x"}}),
        "MedicationRequest.substitution.allowedCodeableConcept",
        "RX-19",
    ),
    (
        "structure_wrong_type",
        lambda n, d: mr(dosageInstruction=[{"text": 5}]),
        "MedicationRequest.dosageInstruction[0].text",
        "",
    ),
]


@pytest.mark.parametrize(
    ("build", "expression", "rule"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_rule_over_http(
    prescriber: httpx.AsyncClient, build: Body, expression: str, rule: str
) -> None:
    now = datetime.now(UTC)
    body = build(now, brussels_date(now))  # RX-12: the Brussels day, not the UTC date
    response = await prescriber.post("/fhir/MedicationRequest", json=body, headers=FHIR_JSON)
    assert response.status_code == 422, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    matching = [i for i in outcome["issue"] if i.get("expression") == [expression]]
    assert matching, outcome
    assert matching[0]["severity"] == "error"
    if rule:
        assert matching[0]["details"]["coding"][0]["code"] == rule


async def test_RX_12_validity_too_long_names_its_code(prescriber: httpx.AsyncClient) -> None:
    today = brussels_date(datetime.now(UTC))
    body = mr(dispenseRequest=validity(today, today + timedelta(days=400)))
    response = await prescriber.post("/fhir/MedicationRequest", json=body, headers=FHIR_JSON)
    assert "VALIDITY_TOO_LONG" in response.json()["issue"][0]["diagnostics"]


async def test_RX_10_default_validity_end_is_filled_in(prescriber: httpx.AsyncClient) -> None:
    from fhir_profiles import brussels_date, default_validity_end

    now = datetime.now(UTC)
    response = await prescriber.post(
        "/fhir/MedicationRequest",
        json=mr(now=now),
        headers=FHIR_JSON,
    )
    period = response.json()["dispenseRequest"]["validityPeriod"]
    assert period["end"] == default_validity_end(brussels_date(now)).isoformat()


async def test_violations_never_echo_the_ssin(prescriber: httpx.AsyncClient) -> None:
    response = await prescriber.post(
        "/fhir/MedicationRequest",
        json=mr(ssin="85073003329"),
        headers=FHIR_JSON,
    )
    assert response.status_code == 422
    assert "85073003329" not in response.text
