"""A pharmacy lists the open prescriptions of the patient at its counter (domain RX-17.2, RX-18,
RX-13, CO-10; issue 12): the eID read, or the SSIN with an active relationship pharmacy-patient,
then the patient's visibility choices and exclusions. The Recip-e sources name no informed
consent for this path (that consent governs the hubs' exchange, CO-1..CO-4), so none of these
patients has given one. Physicians keep RX-9: consent and relationship."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from fhir_profiles import systems
from tests.consents.conftest import OTHER_PHARMACY_NIHDI
from tests.consents.factories import (
    RX_URL,
    SSIN,
    created,
    eid_headers,
    exclusion,
    last_audit,
    now,
    prescription,
    reason_of,
    relationship,
)
from tests.dispenses.factories import dispense
from tests.fixtures.auth import OTHER_PRESCRIBER_NIHDI, PHARMACY_NIHDI
from tests.fixtures.fhir import FHIR_JSON, rid_of

# The national number as pharmacy software sends it: the SSIN system of ehealth-be-core (ID-20).
BY_PATIENT = {"patient:identifier": f"{systems.SSIN}|{SSIN}", "status": "active"}


async def listed(client: httpx.AsyncClient, **headers: str) -> tuple[int, set[str]]:
    response = await client.get(RX_URL, params=BY_PATIENT, headers=headers)
    assert response.status_code == 200, response.text
    bundle = response.json()
    return bundle["total"], {e["resource"]["id"] for e in bundle.get("entry", [])}


async def pharmacies(patient: httpx.AsyncClient, rx: dict[str, Any], *parts: Any) -> None:
    """The patient's RX-13 choice for ``rx``: ``("none",)``, ``("one", nihdi)``."""
    parameters: list[dict[str, Any]] = [{"name": "pharmacies", "valueCode": parts[0]}]
    if len(parts) > 1:
        pharmacy = {"system": systems.NIHDI_ORGANIZATION, "value": parts[1]}
        parameters.append({"name": "pharmacy", "valueIdentifier": pharmacy})
    body = {"resourceType": "Parameters", "parameter": parameters}
    response = await patient.post(
        f"{RX_URL}/{rx['id']}/$set-visibility", json=body, headers=FHIR_JSON
    )
    assert response.status_code == 200, response.text


async def test_rx18_a_pharmacy_lists_by_eid_without_informed_consent(
    app: FastAPI,
    author: httpx.AsyncClient,
    pharmacy: httpx.AsyncClient,
    other_pharmacy: httpx.AsyncClient,
    patient: httpx.AsyncClient,
) -> None:
    shown = await prescription(author)
    chosen = await prescription(author)
    elsewhere = await prescription(author)
    delivered = await prescription(author)
    await pharmacies(patient, chosen, "one", PHARMACY_NIHDI)
    await pharmacies(patient, elsewhere, "one", OTHER_PHARMACY_NIHDI)
    handed = await other_pharmacy.post(
        "/fhir/MedicationDispense", json=dispense(rid=rid_of(delivered)), headers=FHIR_JSON
    )
    assert handed.status_code == 201, handed.text

    # RX-17.2: the open prescriptions visible to this pharmacy (RX-13), in the page and the total.
    assert await listed(pharmacy, **eid_headers()) == (2, {shown["id"], chosen["id"]})
    audit = await last_audit(app)
    assert (audit.action, audit.outcome, audit.reason) == ("search", "permit", "permit-presence")
    assert (audit.role, audit.actor_nihdi) == ("pharmacist", PHARMACY_NIHDI)


async def test_rx13_a_prescription_hidden_from_all_pharmacies_is_absent(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    shown = await prescription(author)
    hidden = await prescription(author)
    await pharmacies(patient, hidden, "none")
    assert await listed(pharmacy, **eid_headers()) == (1, {shown["id"]})
    # Its RID still opens it (RX-13: scanning the barcode overrides the choice).
    by_rid = await pharmacy.get(RX_URL, params={"identifier": rid_of(hidden)})
    assert [e["resource"]["id"] for e in by_rid.json()["entry"]] == [hidden["id"]]


async def test_rx17_2_the_ssin_and_a_pharmacy_relationship_list_without_consent(
    app: FastAPI, author: httpx.AsyncClient, pharmacy: httpx.AsyncClient
) -> None:
    written = await prescription(author)
    await created(pharmacy, relationship(PHARMACY_NIHDI, pharmacy=True))
    assert await listed(pharmacy) == (1, {written["id"]})
    assert (await last_audit(app)).reason == "permit-relationship"


async def test_rx18_the_ssin_alone_is_refused(
    app: FastAPI, author: httpx.AsyncClient, pharmacy: httpx.AsyncClient
) -> None:
    # Neither the card nor a relationship: ask for the RID (RX-17.2). A stale read is no card.
    await prescription(author)
    stale = eid_headers(read_at=now() - timedelta(hours=13))
    for headers in ({}, stale):
        response = await pharmacy.get(RX_URL, params=BY_PATIENT, headers=headers)
        assert reason_of(response) == "no-relationship"
        assert SSIN not in response.text
    audit = await last_audit(app)
    assert (audit.action, audit.outcome, audit.reason) == ("search", "deny", "no-relationship")


async def test_co10_an_exclusion_still_refuses_the_listing(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    await prescription(author)
    await created(pharmacy, relationship(PHARMACY_NIHDI, pharmacy=True))
    await created(patient, exclusion(PHARMACY_NIHDI))
    for headers in ({}, eid_headers()):
        response = await pharmacy.get(RX_URL, params=BY_PATIENT, headers=headers)
        assert reason_of(response) == "excluded"


async def test_rx9_a_physician_still_needs_the_patients_consent(
    app: FastAPI, author: httpx.AsyncClient, colleague: httpx.AsyncClient
) -> None:
    # The change is the pharmacy's path only: a relationship without consent shows another
    # physician his own prescriptions alone (permit-author), not the author's.
    await prescription(author)
    await created(colleague, relationship(OTHER_PRESCRIBER_NIHDI))
    assert await listed(colleague, **eid_headers()) == (0, set())
    assert (await last_audit(app)).reason == "permit-author"
