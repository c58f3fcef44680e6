"""Every custom operation has an OperationDefinition at its canonical URL (issue 15, item 8;
FHIR R4 operationdefinition.html): the CapabilityStatement names it by
``[base]/OperationDefinition/[type]-[code]``, anyone can read it there (public, like metadata),
and what it declares (levels, required and known parameters) is what the operation does."""

from __future__ import annotations

from typing import Any

import httpx
from fhir.resources.R4B.operationdefinition import OperationDefinition

from tests.consents.factories import prescription
from tests.dispenses.factories import operation, parameters
from tests.fixtures.auth import PHARMACY_NIHDI

BASE = "http://gateway.test/fhir"
# What a client of this gateway can call (docs/pharmacy.md, docs/claims.md, docs/capability.md).
EXPECTED = {
    ("MedicationRequest", "set-visibility"),
    ("MedicationRequest", "set-feedback"),
    ("MedicationRequest", "revoke"),
    ("MedicationRequest", "take-in-process"),
    ("MedicationRequest", "release"),
    ("MedicationRequest", "reserve"),
    ("MedicationRequest", "archive"),
    ("MedicationRequest", "delete-by-patient"),
    ("MedicationRequest", "validate"),
    ("MedicationDispense", "undo"),
    ("MedicationDispense", "validate"),
    ("Claim", "cancel"),
    ("Claim", "validate"),
    ("Consent", "validate"),
}


async def listed_operations(client: httpx.AsyncClient) -> dict[tuple[str, str], dict[str, Any]]:
    statement = (await client.get("/fhir/metadata")).json()
    return {
        (resource["type"], op["name"]): op
        for resource in statement["rest"][0]["resource"]
        for op in resource.get("operation", [])
    }


async def test_each_operation_listed_has_a_definition_at_its_canonical_url(
    anonymous: httpx.AsyncClient,
) -> None:
    operations = await listed_operations(anonymous)
    assert set(operations) == EXPECTED
    for (resource_type, code), op in operations.items():
        assert op["definition"] == f"{BASE}/OperationDefinition/{resource_type}-{code}"
        response = await anonymous.get(op["definition"].removeprefix("http://gateway.test"))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/fhir+json")
        definition = response.json()
        OperationDefinition.model_validate(definition)  # FHIR structure
        assert definition["url"] == op["definition"]
        assert definition["id"] == f"{resource_type}-{code}"
        assert (definition["code"], definition["resource"]) == (code, [resource_type])
        assert (definition["kind"], definition["status"]) == ("operation", "active")
        assert definition["description"]
        assert definition["system"] is False
        for param in definition["parameter"]:
            assert param["use"] in ("in", "out")
            assert param["type"]
            assert param["documentation"]
            assert param["min"] in (0, 1)
            assert param["max"] == "1"
        [answer] = [p for p in definition["parameter"] if p["use"] == "out"]
        assert answer["name"] == "return"


async def test_one_spelling_no_urn(anonymous: httpx.AsyncClient) -> None:
    """Today's canonical URLs only: the two ``urn:`` spellings of before are gone."""
    statement = (await anonymous.get("/fhir/metadata")).text
    assert "urn:ehealth-gateway:OperationDefinition" not in statement
    definitions = (await anonymous.get("/fhir/OperationDefinition")).text
    assert "urn:ehealth-gateway:OperationDefinition" not in definitions


async def test_levels_say_where_each_operation_is_called(anonymous: httpx.AsyncClient) -> None:
    for resource_type, code in await listed_operations(anonymous):
        definition = (
            await anonymous.get(f"/fhir/OperationDefinition/{resource_type}-{code}")
        ).json()
        if code == "validate":  # POST [type]/$validate (FHIR R4 resource-operation-validate.html)
            assert (definition["type"], definition["instance"]) == (True, False)
            assert definition["base"] == "http://hl7.org/fhir/OperationDefinition/Resource-validate"
            assert definition["affectsState"] is False
        else:  # POST [type]/[id]/$code
            assert (definition["type"], definition["instance"]) == (False, True)
            assert definition["affectsState"] is True


async def test_unknown_definitions_are_404(anonymous: httpx.AsyncClient) -> None:
    for path in (
        "/fhir/OperationDefinition/MedicationRequest-delete",
        "/fhir/OperationDefinition/AuditEvent-validate",
        "/fhir/OperationDefinition/bad_id!",
    ):
        response = await anonymous.get(path)
        assert response.status_code == 404, path
        assert response.json()["resourceType"] == "OperationOutcome"


async def test_search_lists_them_or_finds_one_by_url(anonymous: httpx.AsyncClient) -> None:
    everything = (await anonymous.get("/fhir/OperationDefinition")).json()
    assert (everything["resourceType"], everything["type"]) == ("Bundle", "searchset")
    assert everything["total"] == len(EXPECTED) == len(everything["entry"])
    assert all(e["fullUrl"] == e["resource"]["url"] for e in everything["entry"])

    url = f"{BASE}/OperationDefinition/Claim-cancel"
    one = (await anonymous.get("/fhir/OperationDefinition", params={"url": url})).json()
    assert [e["resource"]["id"] for e in one["entry"]] == ["Claim-cancel"]
    other = f"{BASE}/OperationDefinition/Claim-delete"
    none = (await anonymous.get("/fhir/OperationDefinition", params={"url": other})).json()
    assert (none["total"], none.get("entry")) == (0, None)

    refused = await anonymous.get("/fhir/OperationDefinition", params={"name": "x"})
    assert refused.status_code == 400
    assert refused.json()["issue"][0]["expression"] == ["name"]


async def declared(client: httpx.AsyncClient, definition_id: str) -> dict[str, int]:
    """The in-parameters of a definition and their minimum."""
    definition = (await client.get(f"/fhir/OperationDefinition/{definition_id}")).json()
    return {p["name"]: p["min"] for p in definition["parameter"] if p["use"] == "in"}


async def test_declared_parameters_are_the_ones_accepted(
    anonymous: httpx.AsyncClient,
    author: httpx.AsyncClient,
    patient: httpx.AsyncClient,
) -> None:
    """What $revoke and $reserve declare is what they take: a required one left out is 400
    naming it, one they do not declare is 400, and the declared ones are enough."""
    assert await declared(anonymous, "MedicationRequest-revoke") == {"reason": 1}
    assert await declared(anonymous, "MedicationRequest-reserve") == {"pharmacy": 1}
    assert await declared(anonymous, "MedicationRequest-set-feedback") == {"allowed": 1}
    rx = (await prescription(author))["id"]
    revoke, reserve = f"MedicationRequest/{rx}/$revoke", f"MedicationRequest/{rx}/$reserve"

    missing = await operation(author, revoke, parameters())
    assert missing.status_code == 400
    assert missing.json()["issue"][0]["expression"] == ["Parameters.parameter.reason"]
    undeclared = await operation(patient, reserve, parameters(pharmacy=PHARMACY_NIHDI, when="x"))
    assert undeclared.status_code == 400

    assert (
        await operation(patient, reserve, parameters(pharmacy=PHARMACY_NIHDI))
    ).status_code == 200


async def test_a_token_is_not_needed_but_does_no_harm(
    anonymous: httpx.AsyncClient, pharmacist: httpx.AsyncClient
) -> None:
    path = "/fhir/OperationDefinition/MedicationDispense-undo"
    public = await anonymous.get(path)
    assert public.status_code == 200
    assert (await pharmacist.get(path)).json() == public.json()
