"""The access decision over HTTP, in the order of CO-12 (docs/architecture.md 5; domain CO-1..CO-13, RX-9,
RX-17, RX-18, SEC-5): each of consent, exclusion and relationship missing gives its reason in a
403 OperationOutcome, and an audit row is written with that reason."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.consents.factories import (
    RX_URL,
    SSIN,
    audit_rows,
    created,
    eid_headers,
    exclusion,
    informed_consent,
    last_audit,
    patient_hash,
    prescription,
    reason_of,
    relationship,
)
from tests.fixtures.auth import OTHER_PRESCRIBER_NIHDI, PHARMACY_NIHDI

BY_PATIENT = {
    "patient:identifier": f"https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/ssin|{SSIN}"
}


async def test_CO_12_2_no_consent_is_refused_and_audited(
    app: FastAPI, author: httpx.AsyncClient, colleague: httpx.AsyncClient
) -> None:
    written = await prescription(author)
    response = await colleague.get(f"{RX_URL}/{written['id']}")
    assert reason_of(response) == "no-consent"
    row = await last_audit(app)
    assert (row.action, row.outcome, row.reason) == ("read", "deny", "no-consent")
    assert (row.resource_type, row.resource_id) == ("MedicationRequest", written["id"])
    assert row.patient_hmac == patient_hash(app)
    assert (row.role, row.actor_nihdi) == ("prescriber", OTHER_PRESCRIBER_NIHDI)
    assert row.request_id == response.headers["x-request-id"]
    assert SSIN not in response.text


async def test_CO_12_3_exclusion_beats_consent_and_relationship(
    app: FastAPI,
    author: httpx.AsyncClient,
    colleague: httpx.AsyncClient,
    patient: httpx.AsyncClient,
) -> None:
    written = await prescription(author)
    await created(patient, informed_consent())
    await created(colleague, relationship(OTHER_PRESCRIBER_NIHDI))
    assert (await colleague.get(f"{RX_URL}/{written['id']}")).status_code == 200
    await created(patient, exclusion(OTHER_PRESCRIBER_NIHDI))
    response = await colleague.get(f"{RX_URL}/{written['id']}")
    assert reason_of(response) == "excluded"
    row = await last_audit(app)
    assert (row.outcome, row.reason, row.resource_id) == ("deny", "excluded", written["id"])


async def test_CO_12_4_no_relationship_is_refused_and_audited(
    app: FastAPI,
    author: httpx.AsyncClient,
    colleague: httpx.AsyncClient,
    patient: httpx.AsyncClient,
) -> None:
    written = await prescription(author)
    await created(patient, informed_consent())
    response = await colleague.get(f"{RX_URL}/{written['id']}")
    assert reason_of(response) == "no-relationship"
    row = await last_audit(app)
    assert (row.action, row.outcome, row.reason) == ("read", "deny", "no-relationship")


async def test_CO_12_consent_relationship_and_no_exclusion_permit(
    app: FastAPI,
    author: httpx.AsyncClient,
    colleague: httpx.AsyncClient,
    patient: httpx.AsyncClient,
) -> None:
    written = await prescription(author)
    await created(patient, informed_consent())
    await created(colleague, relationship(OTHER_PRESCRIBER_NIHDI))
    response = await colleague.get(f"{RX_URL}/{written['id']}")
    assert response.status_code == 200
    assert response.json()["id"] == written["id"]
    row = await last_audit(app)
    assert (row.action, row.outcome, row.reason) == ("read", "permit", "permit-relationship")


async def test_CO_12_order_consent_is_checked_before_exclusion(
    author: httpx.AsyncClient, colleague: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    """Excluded and without consent: the first failing step of CO-12 is the reason."""
    written = await prescription(author)
    await created(patient, exclusion(OTHER_PRESCRIBER_NIHDI))
    assert reason_of(await colleague.get(f"{RX_URL}/{written['id']}")) == "no-consent"


async def test_CO_12_order_exclusion_is_checked_before_relationship(
    author: httpx.AsyncClient, colleague: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    written = await prescription(author)
    await created(patient, informed_consent())
    await created(patient, exclusion(OTHER_PRESCRIBER_NIHDI))
    assert reason_of(await colleague.get(f"{RX_URL}/{written['id']}")) == "excluded"


async def test_CO_13_pharmacy_search_by_patient_follows_RX_18(
    app: FastAPI, author: httpx.AsyncClient, pharmacy: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    """RX-18: no exclusion, then the eID read or a relationship; no consent on this path
    (tests/consents/test_pharmacy_listing_http.py)."""
    await prescription(author)
    assert reason_of(await pharmacy.get(RX_URL, params=BY_PATIENT)) == "no-relationship"
    row = await last_audit(app)
    assert (row.action, row.outcome, row.reason) == ("search", "deny", "no-relationship")
    assert row.patient_hmac == patient_hash(app)

    shown = await pharmacy.get(RX_URL, params=BY_PATIENT, headers=eid_headers())
    assert shown.status_code == 200
    assert shown.json()["total"] == 1
    assert (await last_audit(app)).reason == "permit-presence"

    await created(patient, exclusion(PHARMACY_NIHDI))
    refused = await pharmacy.get(RX_URL, params=BY_PATIENT, headers=eid_headers())
    assert reason_of(refused) == "excluded"


async def test_RX_18_a_pharmacy_relationship_stands_for_the_eid_read(
    app: FastAPI, author: httpx.AsyncClient, pharmacy: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    await prescription(author)
    await created(patient, informed_consent())
    await created(pharmacy, relationship(PHARMACY_NIHDI, pharmacy=True))
    response = await pharmacy.get(RX_URL, params=BY_PATIENT)
    assert response.status_code == 200
    assert response.json()["total"] == 1
    assert (await last_audit(app)).reason == "permit-relationship"


async def test_RX_18_a_stale_eid_read_is_no_proof(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    from datetime import timedelta

    from tests.consents.factories import now

    await created(patient, informed_consent())
    stale = eid_headers(read_at=now() - timedelta(hours=13))
    assert (
        reason_of(await pharmacy.get(RX_URL, params=BY_PATIENT, headers=stale)) == "no-relationship"
    )


async def test_RX_9_a_prescriber_without_the_network_rules_lists_only_his_own(
    app: FastAPI, author: httpx.AsyncClient, colleague: httpx.AsyncClient
) -> None:
    await prescription(author)
    response = await colleague.get(RX_URL, params=BY_PATIENT)
    assert response.status_code == 200
    assert response.json()["total"] == 0
    assert (await last_audit(app)).reason == "permit-author"


async def test_SEC_5_the_author_reads_his_own_without_consent(
    app: FastAPI, author: httpx.AsyncClient
) -> None:
    written = await prescription(author)
    assert (await author.get(f"{RX_URL}/{written['id']}")).status_code == 200
    rows = await audit_rows(app)
    assert [(r.action, r.outcome, r.reason) for r in rows] == [
        ("create", "permit", "permit-author"),
        ("read", "permit", "permit-author"),
    ]


async def test_CO_12_1_an_operator_reads_no_prescription(
    client_for: object, author: httpx.AsyncClient
) -> None:
    written = await prescription(author)
    admin = await client_for("admin")  # type: ignore[operator]
    assert reason_of(await admin.get(f"{RX_URL}/{written['id']}")) == "wrong-role"
    assert reason_of(await admin.get(RX_URL, params=BY_PATIENT)) == "wrong-role"
