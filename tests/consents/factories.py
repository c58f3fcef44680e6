"""Consent-family resources as clients send them (docs/architecture.md 4c), and helpers to read the audit.

``informed_consent()``, ``exclusion(nihdi)``, ``relationship(nihdi)`` return valid JSON dicts;
``eid(...)`` is the proof of presence (``verification[0]``) and ``eid_headers(...)`` the same
proof on a request without a Consent body.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from fhir_profiles import systems
from gateway.storage.tables import audit_events
from tests.fhir_profiles.factories import SSIN, medication_request, overridden
from tests.fixtures.eid import card_number
from tests.fixtures.fhir import FHIR_JSON

OTHER_SSIN = "90010100123"  # a second synthetic patient
CARD = card_number("5921234567")  # no register is configured here: only its check digits count
KIND = "urn:ehealth-gateway:consent-kind"
URL = "/fhir/Consent"
RX_URL = "/fhir/MedicationRequest"


def now() -> datetime:
    return datetime.now(UTC)


def eid(read_at: datetime | None = None, card: str = CARD) -> list[dict[str, Any]]:
    moment = read_at or now() - timedelta(minutes=1)
    return [
        {
            "verified": True,
            "verificationDate": moment.isoformat(timespec="seconds"),
            "verifiedWith": {
                "identifier": {"system": "urn:ehealth-gateway:eid-card-number", "value": card}
            },
        }
    ]


def eid_headers(read_at: datetime | None = None, card: str = CARD) -> dict[str, str]:
    moment = read_at or now() - timedelta(minutes=1)
    return {"x-eid-card-number": card, "x-eid-read-at": moment.isoformat(timespec="seconds")}


def _consent(kind: str, ssin: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Consent",
        "status": "active",
        "category": [{"coding": [{"system": KIND, "code": kind}]}],
        "patient": {"identifier": {"system": systems.SSIN, "value": ssin}},
    }
    return overridden(body, overrides)


def informed_consent(ssin: str = SSIN, *, proof: bool = True, **overrides: Any) -> dict[str, Any]:
    body = _consent("informed-consent", ssin, **overrides)
    if proof and "verification" not in overrides:
        body["verification"] = eid()
    return body


def exclusion(nihdi: str, ssin: str = SSIN, **overrides: Any) -> dict[str, Any]:
    provision = {
        "type": "deny",
        "actor": [
            {"reference": {"identifier": {"system": systems.NIHDI_PROFESSIONAL, "value": nihdi}}}
        ],
    }
    return _consent("exclusion", ssin, provision=provision, **overrides)


def relationship(
    nihdi: str,
    ssin: str = SSIN,
    *,
    kind: str = "eid-read",
    pharmacy: bool = False,
    read_at: datetime | None = None,
    proof: bool = True,
    card: str = CARD,
    **overrides: Any,
) -> dict[str, Any]:
    system = systems.NIHDI_ORGANIZATION if pharmacy else systems.NIHDI_PROFESSIONAL
    provision = {
        "type": "permit",
        "actor": [{"reference": {"identifier": {"system": system, "value": nihdi}}}],
        "code": [{"coding": [{"system": "urn:ehealth-gateway:relationship-kind", "code": kind}]}],
    }
    body = _consent("therapeutic-relationship", ssin, provision=provision, **overrides)
    if proof:
        body["verification"] = eid(read_at, card)
    return body


async def post(client: httpx.AsyncClient, body: dict[str, Any], **headers: str) -> httpx.Response:
    return await client.post(URL, json=body, headers={**FHIR_JSON, **headers})


async def created(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await post(client, body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def prescription(client: httpx.AsyncClient, **kwargs: Any) -> dict[str, Any]:
    response = await client.post(RX_URL, json=medication_request(**kwargs), headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def reason_of(response: httpx.Response) -> str:
    """The reason code of a refusal (docs/architecture.md 5): the OperationOutcome's details code."""
    assert response.status_code == 403, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == "forbidden"
    code: str = issue["details"]["coding"][0]["code"]
    assert issue["diagnostics"] == code  # the reason and nothing else: no health data
    return code


@dataclass(frozen=True)
class AuditRow:
    action: str
    outcome: str
    reason: str
    resource_type: str
    resource_id: str | None
    patient_hmac: str | None
    client_id: str
    role: str
    actor_nihdi: str | None
    request_id: str | None


async def audit_rows(app: FastAPI) -> list[AuditRow]:
    """Every audit row, oldest first."""
    async with app.state.sessions() as session:
        rows = (await session.execute(select(audit_events).order_by(audit_events.c.seq))).all()
    return [
        AuditRow(
            r.action,
            r.outcome,
            r.reason,
            r.resource_type,
            r.resource_id,
            r.patient_hmac,
            r.client_id,
            r.role,
            r.actor_nihdi,
            r.request_id,
        )
        for r in rows
    ]


async def last_audit(app: FastAPI) -> AuditRow:
    return (await audit_rows(app))[-1]


def patient_hash(app: FastAPI, ssin: str = SSIN) -> str:
    digest: str = app.state.keyring.search_hash("ssin", ssin)
    return digest
