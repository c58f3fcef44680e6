"""A patient's access log shows only him (SEC-6, PO-4): when another patient probes his data, the
refused attempts are filed under the prober, never under the target, and no patient ever reads
another person's SSIN in an AuditEvent; the operator still sees every refusal and its target."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.audit.writer import SSIN_SYSTEM, patient_view
from gateway.settings import Settings
from tests.claims.factories import claim
from tests.consents.factories import (
    OTHER_SSIN,
    RX_URL,
    SSIN,
    created,
    informed_consent,
    prescription,
    reason_of,
)
from tests.fixtures.app import ClientFactory
from tests.fixtures.fhir import rid_of

AUDIT = "/fhir/AuditEvent"
P1, P2 = SSIN, OTHER_SSIN


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # A fund to route the attestation to; it is never delivered (no worker in these tests).
    return settings.model_copy(
        update={
            "mutuality_urls": {"100": "http://funds.test/funds/100"},
            "worker_in_process": False,
        }
    )


def events_of(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return [entry["resource"] for entry in response.json().get("entry", [])]


def patient_agents(event: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        agent
        for agent in event["agent"]
        if any(c["code"] == "patient" for r in agent["role"] for c in r["coding"])
    ]


def ssins_in(event: dict[str, Any]) -> set[str]:
    """Every SSIN an AuditEvent names, as agent or as entity."""
    named = [a.get("who", {}) for a in event["agent"]] + [e["what"] for e in event["entity"]]
    return {
        ref["identifier"]["value"]
        for ref in named
        if ref.get("identifier", {}).get("system") == SSIN_SYSTEM
    }


async def probe_everything(
    app: FastAPI, author: httpx.AsyncClient, client_for: ClientFactory
) -> tuple[httpx.AsyncClient, httpx.AsyncClient, int]:
    """P1 has a prescription, a consent and a claim; P2 tries each by id and by search. Returns
    (P1, P2, the number of P2's refused probes)."""
    rx = await prescription(author, ssin=P1)
    p1 = await client_for("patient", ssin=P1)
    p2 = await client_for("patient", ssin=P2)
    consent = await created(p1, informed_consent(ssin=P1))
    posted = await author.post(
        "/fhir/Claim",
        json=claim(patient=P1),
        headers={"content-type": "application/fhir+json", "Idempotency-Key": "s2-claim"},
    )
    assert posted.status_code == 202, posted.text
    [p1_event, *_] = events_of(await p1.get(AUDIT))

    refused = [
        await p2.get(f"{RX_URL}/{rx['id']}"),
        await p2.get(RX_URL, params={"patient:identifier": P1}),
        await p2.get(f"/fhir/Consent/{consent['id']}"),
        await p2.get("/fhir/Consent", params={"patient:identifier": P1}),
        await p2.get(f"/fhir/Claim/{posted.json()['id']}"),
        await p2.get("/fhir/Claim", params={"patient:identifier": P1}),
        await p2.get(f"{AUDIT}/{p1_event['id']}"),
        await p2.get(AUDIT, params={"patient": P1}),
    ]
    assert [reason_of(r) for r in refused] == ["not-own-data"] * len(refused)
    for answer in refused:
        assert P1 not in answer.text
    # By the RID printed on P1's proof: answered like an unknown RID, refused in the log.
    by_rid = await p2.get(RX_URL, params={"identifier": rid_of(rx)})
    assert (by_rid.status_code, by_rid.json()["total"]) == (200, 0)
    return p1, p2, len(refused) + 1


async def test_sec_patient_log_shows_only_the_patient_not_a_prober(
    app: FastAPI, author: httpx.AsyncClient, client_for: ClientFactory
) -> None:
    p1, _p2, _ = await probe_everything(app, author, client_for)

    answer = await p1.get(AUDIT, params={"_count": "100"})
    assert P2 not in answer.text
    events = events_of(answer)
    assert events
    assert answer.json()["total"] == len(events)
    assert [e for e in events if e["outcomeDesc"] == "not-own-data"] == []
    for event in events:
        assert ssins_in(event) <= {P1}
        for agent in patient_agents(event):  # a patient in P1's log is P1 himself
            assert agent["who"]["identifier"]["value"] == P1
        one = await p1.get(f"{AUDIT}/{event['id']}")
        assert one.status_code == 200
        assert P2 not in one.text


async def test_sec_patient_log_shows_only_the_patient_own_refused_probes_without_the_target(
    app: FastAPI, author: httpx.AsyncClient, client_for: ClientFactory
) -> None:
    _p1, p2, probes = await probe_everything(app, author, client_for)

    answer = await p2.get(AUDIT, params={"_count": "100"})
    assert P1 not in answer.text
    refusals = [e for e in events_of(answer) if e["outcomeDesc"] == "not-own-data"]
    assert len(refusals) == probes
    assert {e["outcome"] for e in refusals} == {"4"}
    assert {e["entity"][0]["what"]["type"] for e in refusals} == {
        "MedicationRequest",
        "Consent",
        "Claim",
        "AuditEvent",
    }
    for event in refusals:
        assert ssins_in(event) == {P2}  # himself as the agent; the target is not shown
        one = await p2.get(f"{AUDIT}/{event['id']}")  # his own event, read by its id
        assert one.status_code == 200, one.text
        assert P1 not in one.text


async def test_sec_patient_log_shows_only_the_patient_operator_sees_every_refusal(
    app: FastAPI, author: httpx.AsyncClient, client_for: ClientFactory
) -> None:
    _p1, _p2, probes = await probe_everything(app, author, client_for)
    admin = await client_for("admin")

    everything = events_of(await admin.get(AUDIT, params={"_count": "200"}))
    refusals = [e for e in everything if e["outcomeDesc"] == "not-own-data"]
    assert len(refusals) == probes
    for event in refusals:
        [agent] = patient_agents(event)
        assert agent["who"]["identifier"]["value"] == P2
    # The target is kept for the operator (entity role Patient), claims included: they are
    # refused through the same Guard as everything else.
    targets = [ssins_in(e) - {P2} for e in refusals]
    assert targets == [{P1}] * probes
    # Filed under the prober: the operator finds them in P2's log.
    under_p2 = events_of(await admin.get(AUDIT, params={"patient": P2, "_count": "200"}))
    assert len([e for e in under_p2 if e["outcomeDesc"] == "not-own-data"]) == probes


def test_sec_patient_log_shows_only_the_patient_for_events_filed_before_the_rule() -> None:
    # An event written before refusals were filed under the prober: P1's view of it drops P2.
    legacy = {
        "resourceType": "AuditEvent",
        "agent": [
            {
                "role": [{"coding": [{"system": "urn:ehealth-gateway:role", "code": "patient"}]}],
                "who": {"identifier": {"system": SSIN_SYSTEM, "value": P2}},
                "altId": "gateway-portal",
            }
        ],
        "entity": [
            {"what": {"reference": "MedicationRequest/abc", "type": "MedicationRequest"}},
            {"what": {"identifier": {"system": SSIN_SYSTEM, "value": P1}}},
        ],
    }
    seen = patient_view(legacy, P1)
    assert ssins_in(seen) == {P1}
    assert seen["agent"][0]["altId"] == "gateway-portal"
    assert ssins_in(patient_view(legacy, P2)) == {P2}
