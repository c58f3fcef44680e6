"""``POST [type]/$validate`` (issue 15, item 6; FHIR R4 resource-operation-validate.html): a vendor
checks a resource before sending it for real. The same rules as create, answered 200 with an
OperationOutcome valid or not; nothing stored, forwarded or audited; the create's token.

The bodies are sent the way fhirpy's ``is_valid()`` sends them (the resource itself as JSON to
``[type]/$validate``), which counts the answer invalid when an issue is ``fatal`` or ``error``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fhir_profiles import systems
from gateway.settings import Settings
from tests.claims.conftest import FUND_URLS
from tests.claims.factories import claim
from tests.consents.factories import audit_rows, prescription, relationship
from tests.dispenses.factories import dispense
from tests.fhir_profiles.factories import medication_request
from tests.fixtures.app import ClientFactory
from tests.fixtures.auth import PRESCRIBER_NIHDI
from tests.fixtures.fhir import FHIR_JSON, rid_of

HIS = {"system": "urn:example:his", "value": "rx-checked"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Claims can reach funds 100 and 300 (ID-13), delivered by no one here."""
    return settings.model_copy(
        update={"mutuality_urls": dict(FUND_URLS), "worker_in_process": False}
    )


async def validate(
    client: httpx.AsyncClient, resource_type: str, body: Any, **headers: str
) -> httpx.Response:
    """As fhirpy's ``is_valid()``: the resource as JSON, POSTed to ``[type]/$validate``."""
    return await client.post(
        f"/fhir/{resource_type}/$validate",
        json=body,
        headers={"content-type": "application/json", **headers},
    )


def is_valid(outcome: dict[str, Any]) -> bool:
    """fhirpy's reading of the answer: invalid when any issue is fatal or an error."""
    return not any(issue["severity"] in ("fatal", "error") for issue in outcome["issue"])


def issues_of(outcome: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(expression, rule, message) of each issue."""
    return sorted(
        (
            issue["expression"][0],
            issue.get("details", {}).get("text", ""),
            issue["diagnostics"],
        )
        for issue in outcome["issue"]
    )


async def test_a_valid_prescription_is_valid_and_nothing_is_stored_or_audited(
    app: FastAPI, author: httpx.AsyncClient
) -> None:
    before = await audit_rows(app)
    response = await validate(author, "MedicationRequest", medication_request(identifier=[HIS]))
    assert await audit_rows(app) == before  # nothing read or written about anyone
    assert response.status_code == 200
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert is_valid(outcome)
    [issue] = outcome["issue"]
    assert (issue["severity"], issue["code"]) == ("information", "informational")

    found = await author.get(
        "/fhir/MedicationRequest", params={"identifier": f"{HIS['system']}|{HIS['value']}"}
    )
    assert found.json()["total"] == 0


async def test_the_same_rules_as_create_answered_200(author: httpx.AsyncClient) -> None:
    """A prescription create refuses (422) is invalid, for the same reasons: create stops at the
    gateway's own extensions, $validate goes on and names the profile's issues too."""
    broken = medication_request(
        subject={"identifier": {"system": systems.SSIN, "value": "85073003329"}},
        dosageInstruction=None,
        extension=[{"url": "urn:ehealth-gateway:extension:lifecycle", "valueString": "x"}],
    )
    checked = await validate(author, "MedicationRequest", broken)
    assert checked.status_code == 200
    assert not is_valid(checked.json())
    created = await author.post("/fhir/MedicationRequest", json=broken, headers=FHIR_JSON)
    assert created.status_code == 422
    assert set(issues_of(created.json())) < set(issues_of(checked.json()))
    rules = {rule for _, rule, _ in issues_of(checked.json())}
    # the SSIN's check digits, the missing dosage, the gateway's own extension
    assert {"ID-2", "RX-19", "RX-7"} <= rules


async def test_each_type_runs_its_create_rules(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    rx = await prescription(author)
    future = (datetime.now(UTC) + timedelta(days=3)).isoformat(timespec="seconds")
    relationship_later = relationship(PRESCRIBER_NIHDI)
    relationship_later["provision"]["period"] = {"start": future}
    cases: list[tuple[httpx.AsyncClient, str, dict[str, Any], dict[str, Any]]] = [
        # A dispense handed over in the future (RX-25).
        (
            pharmacy,
            "MedicationDispense",
            dispense(rid=rid_of(rx)),
            dispense(rid=rid_of(rx), whenHandedOver=future),
        ),
        # A relationship that starts in three days (CO-7).
        (patient, "Consent", relationship(PRESCRIBER_NIHDI), relationship_later),
        # An attestation for a fund nobody can reach from here (ID-13).
        (author, "Claim", claim(), claim(insurer="500")),
    ]
    for client, resource_type, valid, broken in cases:
        good = await validate(client, resource_type, valid, **{"idempotency-key": "k-1"})
        assert good.status_code == 200, good.text
        assert is_valid(good.json()), (resource_type, good.text)

        checked = await validate(client, resource_type, broken, **{"idempotency-key": "k-1"})
        assert checked.status_code == 200
        assert not is_valid(checked.json()), resource_type
        created = await client.post(
            f"/fhir/{resource_type}", json=broken, headers={"idempotency-key": "k-1", **FHIR_JSON}
        )
        assert created.status_code == 422, created.text
        # create stops at its first refusal; $validate reports it among its issues
        assert set(issues_of(created.json())) <= set(issues_of(checked.json())), resource_type


async def test_a_claim_without_a_request_key_is_invalid(author: httpx.AsyncClient) -> None:
    """AT-7: the Idempotency-Key header or the provider's own identifier; either will do."""
    checked = (await validate(author, "Claim", claim())).json()
    assert [(e, r) for e, r, _ in issues_of(checked)] == [("Claim.identifier", "AT-7")]
    keyed = await validate(author, "Claim", claim(), **{"idempotency-key": "k-2"})
    assert is_valid(keyed.json())


async def test_malformed_content_is_an_issue_not_an_error(author: httpx.AsyncClient) -> None:
    """What FHIR R4 structure refuses inside the resource is reported as issues (200)."""
    response = await validate(author, "MedicationRequest", medication_request(status=5))
    assert response.status_code == 200
    [issue] = response.json()["issue"]
    assert (issue["severity"], issue["expression"]) == ("error", ["MedicationRequest.status"])


async def test_a_parameters_body_with_mode_create(author: httpx.AsyncClient) -> None:
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "resource", "resource": medication_request()},
            {"name": "mode", "valueCode": "create"},
        ],
    }
    response = await validate(author, "MedicationRequest", body)
    assert response.status_code == 200
    assert is_valid(response.json())
    broken = {
        "resourceType": "Parameters",
        "parameter": [{"name": "resource", "resource": medication_request(status=5)}],
    }
    assert not is_valid((await validate(author, "MedicationRequest", broken)).json())


@pytest.mark.parametrize(
    ("body", "expression"),
    [
        # update and delete are instance-level; profile is not run
        (
            {
                "resourceType": "Parameters",
                "parameter": [
                    {"name": "resource", "resource": {"resourceType": "MedicationRequest"}},
                    {"name": "mode", "valueCode": "update"},
                ],
            },
            "Parameters.parameter[1].valueCode",
        ),
        (
            {"resourceType": "Parameters", "parameter": [{"name": "mode", "valueCode": "create"}]},
            "Parameters",
        ),
        (
            {"resourceType": "Parameters", "parameter": [{"name": "profile", "valueUri": "urn:x"}]},
            "Parameters.parameter[0]",
        ),
        ({"resourceType": "Patient"}, "resourceType"),
        (
            {"resourceType": "Parameters", "parameter": [{"name": "resource", "valueString": "x"}]},
            "Parameters.parameter[0].resource",
        ),
    ],
)
async def test_a_request_that_cannot_be_validated_is_400(
    author: httpx.AsyncClient, body: dict[str, Any], expression: str
) -> None:
    response = await validate(author, "MedicationRequest", body)
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == [expression]


async def test_not_json_is_400(author: httpx.AsyncClient) -> None:
    response = await author.post("/fhir/Consent/$validate", content=b"{not json", headers=FHIR_JSON)
    assert response.status_code == 400


async def test_the_create_token_is_needed(
    client_for: ClientFactory, pharmacy: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    anonymous = await client_for(None)
    assert (await validate(anonymous, "MedicationRequest", medication_request())).status_code == 401
    # Only prescribers create prescriptions and attestations, only pharmacies dispense.
    assert (await validate(pharmacy, "MedicationRequest", medication_request())).status_code == 403
    assert (await validate(patient, "Claim", claim())).status_code == 403
    read_only = await client_for("prescriber", scope="system/MedicationRequest.rs")
    assert (await validate(read_only, "MedicationRequest", medication_request())).status_code == 403


async def test_only_at_type_level(author: httpx.AsyncClient) -> None:
    rx = await prescription(author)
    response = await author.post(
        f"/fhir/MedicationRequest/{rx['id']}/$validate",
        json=medication_request(),
        headers=FHIR_JSON,
    )
    assert response.status_code == 404
