"""Every read, search, create, update and refusal on /fhir writes an AuditEvent (docs/architecture.md 8;
domain SEC-5 WHO/WHAT/WHEN/HOW, SEC-9), and the patient reads his own access log."""

from __future__ import annotations

import base64
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request
from sqlalchemy import create_engine
from structlog.testing import capture_logs

from gateway.audit.chain import verify
from gateway.audit.writer import AuditRecord, record_denied
from gateway.auth.identity import authenticate
from gateway.db import sync_url
from gateway.errors import Forbidden
from tests.consents.factories import (
    OTHER_SSIN,
    RX_URL,
    SSIN,
    audit_rows,
    created,
    eid_headers,
    informed_consent,
    patient_hash,
    prescription,
    reason_of,
)
from tests.fixtures.auth import OTHER_PRESCRIBER_NIHDI, PRESCRIBER_NIHDI
from tests.fixtures.fhir import FHIR_JSON

AUDIT = "/fhir/AuditEvent"


async def test_SEC_5_who_what_when_how_for_each_interaction(
    app: FastAPI,
    author: httpx.AsyncClient,
    colleague: httpx.AsyncClient,
    pharmacy: httpx.AsyncClient,
    client_for: Any,
) -> None:
    headers = {"x-request-id": "req-42", "user-agent": "PharmaSoft/7.1"}
    written = await prescription(author)
    await author.get(f"{RX_URL}/{written['id']}", headers=headers)
    await author.get(RX_URL, params={"patient:identifier": SSIN})
    await colleague.get(f"{RX_URL}/{written['id']}")
    await pharmacy.get(RX_URL, params={"patient:identifier": SSIN})
    rows = await audit_rows(app)
    assert [(r.action, r.outcome, r.reason) for r in rows] == [
        ("create", "permit", "permit-author"),
        ("read", "permit", "permit-author"),
        ("search", "permit", "permit-author"),
        ("read", "deny", "no-consent"),
        ("search", "deny", "no-relationship"),  # a pharmacy without eID or relationship (RX-18)
    ]
    assert {r.patient_hmac for r in rows} == {patient_hash(app)}
    read = rows[1]
    assert (read.resource_type, read.resource_id) == ("MedicationRequest", written["id"])
    assert (read.role, read.actor_nihdi, read.request_id) == (
        "prescriber",
        PRESCRIBER_NIHDI,
        "req-42",
    )
    assert rows[3].actor_nihdi == OTHER_PRESCRIBER_NIHDI

    admin = await client_for("admin")
    log = (await admin.get(AUDIT, params={"patient": SSIN, "_count": "50"})).json()
    events = [e["resource"] for e in log["entry"]]
    event = next(
        e
        for e in events
        if {"type": "request-id", "valueString": "req-42"} in e["entity"][0].get("detail", [])
    )
    assert (event["action"], event["outcome"], event["outcomeDesc"]) == ("R", "0", "permit-author")
    assert event["resourceType"] == "AuditEvent"
    assert event["agent"][0]["who"]["identifier"]["value"] == PRESCRIBER_NIHDI
    assert event["entity"][0]["what"]["reference"] == f"MedicationRequest/{written['id']}"
    assert event["entity"][1]["what"]["identifier"]["value"] == SSIN
    details = {d["type"]: d["valueString"] for d in event["entity"][0]["detail"]}
    assert details == {"request-id": "req-42", "client-software": "PharmaSoft/7.1"}
    assert event["recorded"]
    search = next(e for e in events if e["subtype"][0]["code"] == "search-type")
    query = base64.b64decode(search["entity"][0]["query"]).decode()
    assert SSIN not in query  # SEC-5: the search parameters without the SSIN


async def test_SEC_6_the_patient_reads_who_accessed_his_data(
    app: FastAPI,
    author: httpx.AsyncClient,
    colleague: httpx.AsyncClient,
    patient: httpx.AsyncClient,
    client_for: Any,
) -> None:
    written = await prescription(author)
    await prescription(author, ssin=OTHER_SSIN)
    await colleague.get(f"{RX_URL}/{written['id']}")
    log = await patient.get(AUDIT)
    assert log.status_code == 200, log.text
    bundle = log.json()
    events = [e["resource"] for e in bundle["entry"]]
    assert (
        bundle["total"] == len(events) == 2
    )  # the create and the refused read; not the other patient's
    assert [e["outcomeDesc"] for e in events] == ["no-consent", "permit-author"]  # newest first
    assert {e["entity"][1]["what"]["identifier"]["value"] for e in events} == {SSIN}
    one = await patient.get(f"{AUDIT}/{events[0]['id']}")
    assert one.status_code == 200
    assert one.json()["outcome"] == "4"  # a refusal: minor failure

    assert reason_of(await patient.get(AUDIT, params={"patient": OTHER_SSIN})) == "not-own-data"
    stranger = await client_for("patient", ssin=OTHER_SSIN)
    assert reason_of(await stranger.get(f"{AUDIT}/{events[0]['id']}")) == "not-own-data"
    # Reading the log is itself in the log.
    rows = await audit_rows(app)
    assert rows[-3].resource_type == "AuditEvent"


async def test_SEC_9_operators_page_and_filter_by_date(
    app: FastAPI, author: httpx.AsyncClient, client_for: Any
) -> None:
    for _ in range(5):
        await prescription(author)
    admin = await client_for("admin")
    seen: list[str] = []
    response = await admin.get(AUDIT, params={"patient": SSIN, "_count": "2"})
    assert response.json()["total"] == 5  # the creates (the search itself is recorded after it)
    while True:
        bundle = response.json()
        seen.extend(e["resource"]["id"] for e in bundle["entry"])
        following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not following:
            break
        response = await admin.get(following[0])
    assert len(set(seen)) == len(seen) == 5  # keyset paging: later events do not shift pages
    future = await admin.get(AUDIT, params={"patient": SSIN, "date": "ge2200-12-31"})
    assert future.json()["total"] == 0
    since = await admin.get(AUDIT, params={"patient": SSIN, "date": "ge2000-01-01"})
    assert since.json()["total"] == 5 + 4  # and the operator's four searches about the patient
    everything = await admin.get(AUDIT)
    assert everything.json()["total"] >= 6  # the creates and the operator's own searches
    assert (await admin.get(AUDIT, params={"date": "yesterday"})).status_code == 400


async def test_SEC_9_providers_do_not_read_the_audit_log(
    app: FastAPI, author: httpx.AsyncClient
) -> None:
    response = await author.get(AUDIT, params={"patient": SSIN})
    assert response.status_code == 403  # no AuditEvent scope in the prescriber's ceiling
    row = (await audit_rows(app))[-1]
    assert (row.action, row.outcome, row.reason, row.resource_type) == (
        "search",
        "deny",
        "insufficient-scope",
        "AuditEvent",
    )


async def test_SEC_5_refusals_before_any_service_are_audited(
    app: FastAPI, pharmacy: httpx.AsyncClient
) -> None:
    response = await pharmacy.post(RX_URL, json={}, headers=FHIR_JSON)
    assert response.status_code == 403
    row = (await audit_rows(app))[-1]
    assert (row.action, row.outcome, row.reason, row.role) == (
        "create",
        "deny",
        "wrong-role",
        "pharmacist",
    )


async def test_SEC_5_no_ssin_in_logs(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient
) -> None:
    with capture_logs() as events:
        await prescription(author)
        await pharmacy.get(RX_URL, params={"patient:identifier": SSIN}, headers=eid_headers())
    assert events
    assert SSIN not in repr(events)


async def test_SEC_9_the_chain_verifies_after_http_traffic(
    app: FastAPI,
    database_url: str,
    author: httpx.AsyncClient,
    colleague: httpx.AsyncClient,
    patient: httpx.AsyncClient,
) -> None:
    written = await prescription(author)
    await created(patient, informed_consent(proof=False))
    await colleague.get(f"{RX_URL}/{written['id']}")
    await patient.get(AUDIT)
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            verdict = verify(connection)
    finally:
        engine.dispose()
    assert verdict.ok, verdict.describe()
    assert verdict.events == len(await audit_rows(app))


async def test_SEC_5_a_refusal_recorded_by_its_own_code_is_not_audited_twice(
    app: FastAPI, client_for: Any
) -> None:
    """Code that writes its refusal itself (``record_denied``) and raises ``Forbidden``."""
    probe = APIRouter()

    @probe.get("/fhir/Probe/refuse")
    async def refuse(request: Request) -> None:
        caller = await authenticate(request)
        record = AuditRecord("read", "deny", "not-author", "Claim", "c1", SSIN, caller, None)
        await record_denied(request.app.state.sessions, request.app.state.keyring, record)
        raise Forbidden("not-author: only the provider reads his claims")

    app.include_router(probe)
    prescriber = await client_for("prescriber")
    response = await prescriber.get("/fhir/Probe/refuse")
    assert response.status_code == 403, response.text
    rows = await audit_rows(app)
    assert [(r.resource_type, r.reason) for r in rows] == [("Claim", "not-author")]
