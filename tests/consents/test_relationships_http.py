"""Therapeutic relationships (docs/architecture.md 4c; domain CO-5..CO-7, CO-13, RX-9): created with proof of
the patient's presence, the legal end filled in by kind, listed and ended by the patient or the
provider, and ending on their own (a controlled clock shows it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from consent import add_months
from fhir_profiles.dates import BRUSSELS
from tests.consents.factories import (
    RX_URL,
    SSIN,
    URL,
    created,
    eid,
    eid_headers,
    informed_consent,
    last_audit,
    post,
    prescription,
    reason_of,
    relationship,
)
from tests.fixtures.auth import OTHER_PRESCRIBER_NIHDI, PHARMACY_NIHDI, PRESCRIBER_NIHDI
from tests.fixtures.clock import Clock
from tests.fixtures.fhir import FHIR_JSON

BY_PATIENT = {"patient:identifier": SSIN}
# CO-6: months of each kind.
DURATIONS = {"eid-read": 15, "referral": 3, "gmf": 12, "hospital": 3, "emergency": 1}


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize(("kind", "months"), DURATIONS.items())
async def test_CO_6_the_gateway_fills_the_legal_end_by_kind(
    colleague: httpx.AsyncClient, kind: str, months: int
) -> None:
    read_at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    body = relationship(OTHER_PRESCRIBER_NIHDI, kind=kind, read_at=read_at)
    body["provision"]["period"] = {"end": "2099-12-31T00:00:00+00:00"}  # ignored: the law decides
    made = await created(colleague, body)
    period = made["provision"]["period"]
    assert instant(period["start"]) == read_at  # the eID read starts it (CO-7)
    # CO-6: Brussels calendar months (the same wall-clock time across a daylight-saving change)
    assert instant(period["end"]) == add_months(read_at.astimezone(BRUSSELS), months)
    assert made["scope"]["coding"][0]["code"] == "treatment"


@pytest.mark.parametrize(("kind", "months"), DURATIONS.items())
async def test_CO_6_a_relationship_ends_on_its_own_after_its_legal_duration(
    app: FastAPI,
    clock: Clock,
    author: httpx.AsyncClient,
    colleague: httpx.AsyncClient,
    patient: httpx.AsyncClient,
    kind: str,
    months: int,
) -> None:
    start = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
    clock.now = start
    await created(patient, informed_consent(proof=False))
    await created(colleague, relationship(OTHER_PRESCRIBER_NIHDI, kind=kind, read_at=start))
    end = add_months(start, months)

    clock.now = end - timedelta(days=1)  # the last day: still a relationship (RX-9 reads allowed)
    written = await prescription(author, now=clock.now)
    assert (await colleague.get(f"{RX_URL}/{written['id']}")).status_code == 200
    listed = await colleague.get(RX_URL, params=BY_PATIENT)
    assert listed.json()["total"] == 1
    assert (await last_audit(app)).reason == "permit-relationship"

    clock.now = end + timedelta(seconds=1)  # past the legal end (CO-7: start <= t <= end)
    assert reason_of(await colleague.get(f"{RX_URL}/{written['id']}")) == "no-relationship"
    listed = await colleague.get(RX_URL, params=BY_PATIENT)
    assert listed.json()["total"] == 0  # only his own now
    assert (await last_audit(app)).reason == "permit-author"


async def test_CO_7_reading_the_eid_again_extends_with_a_new_relationship(
    clock: Clock, author: httpx.AsyncClient, pharmacy: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    start = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)
    clock.now = start
    await created(patient, informed_consent(proof=False))
    await created(pharmacy, relationship(PHARMACY_NIHDI, pharmacy=True, read_at=start))
    clock.now = start + timedelta(days=400)
    await created(pharmacy, relationship(PHARMACY_NIHDI, pharmacy=True, read_at=clock.now))
    clock.now = add_months(start, 15) + timedelta(days=1)  # the first one has ended
    await prescription(author, now=clock.now)
    response = await pharmacy.get(RX_URL, params=BY_PATIENT)
    assert response.status_code == 200
    assert response.json()["total"] == 1


async def test_CO_13_a_pharmacy_relationship_covers_the_pharmacy_not_its_neighbour(
    author: httpx.AsyncClient,
    pharmacy: httpx.AsyncClient,
    other_pharmacy: httpx.AsyncClient,
    patient: httpx.AsyncClient,
) -> None:
    await prescription(author)
    await created(patient, informed_consent(proof=False))
    await created(pharmacy, relationship(PHARMACY_NIHDI, pharmacy=True))
    assert (await pharmacy.get(RX_URL, params=BY_PATIENT)).json()["total"] == 1
    assert reason_of(await other_pharmacy.get(RX_URL, params=BY_PATIENT)) == "no-relationship"


async def test_CO_5_a_provider_registers_his_own_relationship_only_with_the_eid_read(
    author: httpx.AsyncClient,
) -> None:
    assert reason_of(await post(author, relationship(OTHER_PRESCRIBER_NIHDI))) == "not-own-data"
    assert (
        reason_of(await post(author, relationship(PRESCRIBER_NIHDI, proof=False))) == "no-presence"
    )
    assert (await post(author, relationship(PRESCRIBER_NIHDI))).status_code == 201


async def test_CO_5_the_patient_declares_a_relationship(patient: httpx.AsyncClient) -> None:
    made = await created(patient, relationship(OTHER_PRESCRIBER_NIHDI, proof=False, kind="gmf"))
    assert made["status"] == "active"


async def test_CO_5_the_patient_ends_a_relationship_and_the_history_stays(
    app: FastAPI,
    author: httpx.AsyncClient,
    colleague: httpx.AsyncClient,
    patient: httpx.AsyncClient,
) -> None:
    written = await prescription(author)
    await created(patient, informed_consent(proof=False))
    made = await created(colleague, relationship(OTHER_PRESCRIBER_NIHDI))
    assert (await colleague.get(f"{RX_URL}/{written['id']}")).status_code == 200

    ended = await patient.put(
        f"{URL}/{made['id']}", json={**made, "status": "inactive"}, headers=FHIR_JSON
    )
    assert ended.status_code == 200, ended.text
    period = ended.json()["provision"]["period"]
    assert instant(period["end"]) < instant(made["provision"]["period"]["end"])  # ended early
    assert reason_of(await colleague.get(f"{RX_URL}/{written['id']}")) == "no-relationship"
    versions = (await patient.get(f"{URL}/{made['id']}/_history")).json()
    assert versions["total"] == 2
    listed = await patient.get(URL, params={"category": "therapeutic-relationship"})
    assert [e["resource"]["status"] for e in listed.json()["entry"]] == ["inactive"]


async def test_CO_5_the_provider_ends_his_relationship_with_the_patient_present(
    colleague: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    made = await created(colleague, relationship(OTHER_PRESCRIBER_NIHDI))
    stale = {
        **made,
        "status": "inactive",
        "verification": eid(datetime.now(UTC) - timedelta(days=2)),
    }
    assert (
        reason_of(await colleague.put(f"{URL}/{made['id']}", json=stale, headers=FHIR_JSON))
        == "no-presence"
    )
    ended = await colleague.put(
        f"{URL}/{made['id']}",
        json={**made, "status": "inactive"},
        headers={**FHIR_JSON, **eid_headers()},
    )
    assert ended.status_code == 200
    assert ended.json()["status"] == "inactive"


async def test_a_relationship_cannot_start_in_the_future(colleague: httpx.AsyncClient) -> None:
    body = relationship(OTHER_PRESCRIBER_NIHDI)
    body["provision"]["period"] = {"start": (datetime.now(UTC) + timedelta(days=3)).isoformat()}
    assert (await post(colleague, body)).status_code == 422


async def test_capability_statement_declares_consent_audit_and_visibility(
    anonymous: httpx.AsyncClient,
) -> None:
    statement = (await anonymous.get("/fhir/metadata")).json()
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    consent = resources["Consent"]
    assert {i["code"] for i in consent["interaction"]} >= {
        "create",
        "read",
        "update",
        "search-type",
        "history-instance",
    }
    assert {p["name"] for p in consent["searchParam"]} >= {"patient", "actor", "category", "status"}
    audit = resources["AuditEvent"]
    assert {i["code"] for i in audit["interaction"]} == {"read", "search-type"}
    assert {p["name"] for p in audit["searchParam"]} >= {"patient", "date", "_count"}
    operations = {o["name"] for o in resources["MedicationRequest"]["operation"]}
    assert "set-visibility" in operations
