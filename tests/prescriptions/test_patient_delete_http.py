"""The patient deletes an open prescription he does not want (issue 16, item 2; domain RX-7
"verwijderen"): ``POST /fhir/MedicationRequest/{id}/$delete-by-patient``. It becomes ``cancelled``
with the status reason ``deleted-by-patient``; its author reads that and why; pharmacies no longer
get it, by RID included (the RID shows its state only, as after a revocation); once a pharmacy
holds it, or it is no longer open, the deletion is a 409 with the state machine's message."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from fhir_profiles import systems
from tests.consents.factories import (
    OTHER_SSIN,
    RX_URL,
    SSIN,
    audit_rows,
    eid_headers,
    last_audit,
    patient_hash,
    prescription,
    reason_of,
)
from tests.dispenses.factories import (
    dispense_rid,
    fetch,
    operation,
    outcome_text,
    parameters,
    revoke,
    state_of,
)
from tests.fixtures.app import ClientFactory
from tests.fixtures.auth import PHARMACY_NIHDI
from tests.fixtures.clock import Clock
from tests.fixtures.fhir import rid_of

REASON_SYSTEM = "urn:ehealth-gateway:prescription-status-reason"


async def delete(client: httpx.AsyncClient, rx_id: str, **headers: str) -> httpx.Response:
    """As a patient app posts it: no parameters, so no body at all."""
    return await operation(client, f"MedicationRequest/{rx_id}/$delete-by-patient", **headers)


def deleted_by_patient(resource: dict[str, Any]) -> bool:
    codings = resource.get("statusReason", {}).get("coding", [])
    return resource["status"] == "cancelled" and codings == [
        {"system": REASON_SYSTEM, "code": "deleted-by-patient", "display": "Deleted by the patient"}
    ]


async def test_RX_7_the_patient_deletes_an_open_prescription_and_the_author_sees_why(
    app: FastAPI, author: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    rx = await prescription(author)
    response = await delete(patient, rx["id"])
    assert response.status_code == 200, response.text
    deleted = response.json()
    assert deleted_by_patient(deleted)
    assert deleted["statusReason"]["text"] == "the patient deleted this prescription"
    assert state_of(deleted) == "revoked"
    assert deleted["meta"]["versionId"] == "2"
    assert deleted["medicationCodeableConcept"] == rx["medicationCodeableConcept"]  # unchanged

    audited = await last_audit(app)
    assert (audited.role, audited.outcome, audited.reason) == (
        "patient",
        "permit",
        "permit-patient-self",
    )
    assert (audited.resource_id, audited.patient_hmac) == (rx["id"], patient_hash(app))

    # The author reads it and why, and finds it among his cancelled prescriptions.
    assert deleted_by_patient(await fetch(author, rx["id"]))
    mine = (await author.get(RX_URL, params={"status": "cancelled"})).json()
    assert [e["resource"]["id"] for e in mine["entry"]] == [rx["id"]]
    assert deleted_by_patient(mine["entry"][0]["resource"])
    assert (await author.get(RX_URL, params={"status": "active"})).json()["total"] == 0
    # The patient's own list shows it as deleted too.
    assert deleted_by_patient((await patient.get(f"{RX_URL}/{rx['id']}")).json())


async def test_RX_7_pharmacies_no_longer_get_a_deleted_prescription_by_rid_included(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    rx = await prescription(author)
    assert (await delete(patient, rx["id"])).status_code == 200

    # By RID: its state only (RX-6 getPrescriptionStatus), as for a revoked one; no content.
    seen = await pharmacy.get(RX_URL, params={"identifier": rid_of(rx)})
    assert seen.status_code == 200, seen.text
    [entry] = seen.json()["entry"]
    shown = entry["resource"]
    assert deleted_by_patient(shown)
    assert shown["meta"]["tag"][0]["code"] == "SUBSETTED"
    for element in ("medicationCodeableConcept", "dosageInstruction", "dispenseRequest"):
        assert element not in shown
    assert SSIN not in seen.text

    # At the counter with the eID read: open prescriptions only, so not this one.
    counter = await pharmacy.get(
        RX_URL,
        params={"patient:identifier": f"{systems.SSIN}|{SSIN}", "status": "active"},
        headers=eid_headers(),
    )
    assert counter.status_code == 200, counter.text
    assert counter.json()["total"] == 0

    refused = await dispense_rid(pharmacy, rid_of(rx))
    assert refused.status_code == 409
    assert outcome_text(refused) == "cannot dispense this prescription: it has been revoked"
    taken = await operation(
        pharmacy, f"MedicationRequest/{rx['id']}/$take-in-process", parameters(rid=rid_of(rx))
    )
    assert taken.status_code == 409


async def test_RX_7_only_an_open_prescription_can_be_deleted(
    app: FastAPI,
    clock: Clock,
    author: httpx.AsyncClient,
    pharmacy: httpx.AsyncClient,
    patient: httpx.AsyncClient,
) -> None:
    in_process = await prescription(author)
    path = f"MedicationRequest/{in_process['id']}"
    await operation(pharmacy, f"{path}/$take-in-process", parameters(rid=rid_of(in_process)))
    reserved = await prescription(author)
    reserve = parameters(pharmacy=PHARMACY_NIHDI)
    await operation(patient, f"MedicationRequest/{reserved['id']}/$reserve", reserve)
    delivered = await prescription(author)
    assert (await dispense_rid(pharmacy, rid_of(delivered))).status_code == 201
    revoked = await prescription(author)
    assert (await revoke(author, revoked["id"])).status_code == 200

    cases = [
        (in_process, "it is in process at a pharmacy"),
        (reserved, "it is in process at a pharmacy"),
        (delivered, "it has been delivered"),
        (revoked, "it has been revoked"),
    ]
    for rx, why in cases:
        before = await fetch(author, rx["id"])
        refused = await delete(patient, rx["id"])
        assert refused.status_code == 409, refused.text
        assert outcome_text(refused) == f"cannot delete this prescription: {why}"
        assert (await last_audit(app)).reason == "state-conflict"
        after = await fetch(author, rx["id"])
        assert after["meta"]["versionId"] == before["meta"]["versionId"]  # nothing written
        assert not deleted_by_patient(after)

    expiring = await prescription(author)
    clock.now = clock() + timedelta(days=100)  # past the default validity (RX-10)
    refused = await delete(patient, expiring["id"])
    assert refused.status_code == 409
    assert outcome_text(refused) == "cannot delete this prescription: its validity has ended"


async def test_RX_7_deletion_is_the_patients_own_and_audited_when_refused(
    app: FastAPI,
    client_for: ClientFactory,
    author: httpx.AsyncClient,
    pharmacy: httpx.AsyncClient,
) -> None:
    rx = await prescription(author)
    stranger = await client_for("patient", ssin=OTHER_SSIN)
    assert reason_of(await delete(stranger, rx["id"])) == "not-own-data"
    refusal = await last_audit(app)
    assert (refusal.outcome, refusal.role, refusal.resource_id) == ("deny", "patient", rx["id"])
    # Providers do not delete (the author revokes with a reason, $revoke): refused by role
    # before the prescription is looked up (CO-12.1).
    for provider in (author, pharmacy):
        refused = await delete(provider, rx["id"])
        assert refused.status_code == 403
        assert outcome_text(refused).startswith("wrong-role")
    assert (await fetch(author, rx["id"]))["status"] == "active"
    refusals = [row.reason for row in await audit_rows(app) if row.outcome == "deny"]
    assert refusals == ["not-own-data"]


async def test_delete_takes_no_parameters_and_honours_if_match(
    author: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    rx = await prescription(author)
    path = f"MedicationRequest/{rx['id']}/$delete-by-patient"
    extra = await operation(patient, path, parameters(reason="changed my mind"))
    assert extra.status_code == 400
    assert extra.json()["issue"][0]["expression"] == ["Parameters.parameter"]
    stale = await delete(patient, rx["id"], **{"If-Match": 'W/"7"'})
    assert stale.status_code == 412
    assert (await fetch(author, rx["id"]))["status"] == "active"
    # An empty Parameters body is the same as none (docs/pharmacy.md).
    done = await operation(patient, path, parameters(), **{"If-Match": 'W/"1"'})
    assert done.status_code == 200, done.text
    assert deleted_by_patient(done.json())
