"""Patients (docs/architecture.md 5; domain PO-4): a patient sees everything about himself and nothing about
anyone else. Patients' tokens carry an ``ssin`` claim and ``patient/`` scopes (the portal issue
adds the login flow that issues them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.auth import scopes, tokens
from tests.consents.factories import OTHER_SSIN, RX_URL, SSIN, last_audit, prescription, reason_of
from tests.fixtures.auth import BASE_URL


async def test_PO_4_a_patient_reads_and_lists_his_own_prescriptions(
    app: FastAPI, author: httpx.AsyncClient, patient: httpx.AsyncClient, client_for: Any
) -> None:
    mine = await prescription(author)
    theirs = await prescription(author, ssin=OTHER_SSIN)
    assert (await patient.get(f"{RX_URL}/{mine['id']}")).status_code == 200
    row = await last_audit(app)
    assert (row.role, row.client_id, row.reason) == (
        "patient",
        tokens.PORTAL_CLIENT_ID,
        "permit-patient-self",
    )
    assert reason_of(await patient.get(f"{RX_URL}/{theirs['id']}")) == "not-own-data"

    listed = (await patient.get(RX_URL)).json()  # no patient parameter: himself
    assert [e["resource"]["id"] for e in listed["entry"]] == [mine["id"]]
    other = await patient.get(RX_URL, params={"patient:identifier": OTHER_SSIN})
    assert reason_of(other) == "not-own-data"
    # A patient cannot create prescriptions: no such scope.
    stranger = await client_for("patient", ssin=OTHER_SSIN)
    assert (
        await stranger.post(RX_URL, json={}, headers={"content-type": "application/fhir+json"})
    ).status_code == 403


async def test_patient_tokens_must_name_the_patient(app: FastAPI) -> None:
    """A patient token without ``ssin``, or another role with one, is refused (401)."""
    key = await app.state.auth.keys.signing_key()

    async def token(role: str, ssin: str | None, nihdi: str | None = None) -> str:
        value, _ = tokens.issue(
            key,
            issuer=BASE_URL,
            audience=f"{BASE_URL}/fhir",
            client_id=tokens.PORTAL_CLIENT_ID,
            role=role,
            nihdi=nihdi,
            ssin=ssin,
            scope="patient/MedicationRequest.rs",
            ttl=60,
            not_after=datetime.now(UTC) + timedelta(hours=1),
        )
        return value

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        for bad in (
            await token("patient", None),
            await token("prescriber", SSIN, "19234011004"),
            await token("patient", SSIN, "19234011004"),
        ):
            response = await http.get(RX_URL, headers={"authorization": f"Bearer {bad}"})
            assert response.status_code == 401, response.text


def test_patient_scopes_are_granted_within_the_patient_ceiling() -> None:
    assert "patient/AuditEvent.rs" in scopes.to_string(scopes.patient_grant(None))
    granted = scopes.patient_grant("patient/MedicationRequest.r patient/Consent.c")
    assert scopes.to_string(granted) == "patient/Consent.c patient/MedicationRequest.r"
    with pytest.raises(scopes.ScopeError):
        scopes.patient_grant("patient/MedicationRequest.c")
    with pytest.raises(scopes.ScopeError):
        scopes.patient_grant("system/MedicationRequest.r")
    # A patient scope meets the system requirement of a route; the decision confines it (PO-4).
    held = frozenset({"patient/MedicationRequest.rs"})
    assert scopes.covers(held, scopes.parse("system/MedicationRequest.r"))
    assert not scopes.covers(held, scopes.parse("system/MedicationRequest.u"))
