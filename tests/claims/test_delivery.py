"""From intake to settlement with the real mock funds (in process, spoken to over HTTP/ASGI).

What the provider sees at each step: the Claim's state, the one ClaimResponse with the fund's
answer (AT-4), its refusal reasons with their FHIRPath (AT-5), settlement (AT-1), cancellation
(AT-6, AT-7: twice answers as once).
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select, update

from gateway.storage.tables import fund_cursors, fund_events
from mutualities.app import MutualityApp
from tests.claims.conftest import (
    Worker,
    claim_row,
    job_rows,
    post_claim,
    response_for,
    state_of,
)
from tests.claims.factories import JAN, MARIE, OTHER_GP, cancel_params, claim, item
from tests.consents.factories import reason_of
from tests.fixtures.app import ClientFactory

ATTESTATION = "https://www.mycarenet.be/eattest"


async def received(funds: MutualityApp, code: str) -> dict[str, Any]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=funds), base_url="http://funds.test"
    ) as http:
        report: dict[str, Any] = (await http.get(f"/funds/{code}/admin/received")).json()
        return report


async def test_delivered_then_settled(
    provider: httpx.AsyncClient, worker: Worker, funds: MutualityApp, app: FastAPI
) -> None:
    claim_id = (await post_claim(provider, claim())).json()["id"]
    assert await response_for(provider, claim_id) == []

    assert await worker.deliver() == 1
    [answer] = await response_for(provider, claim_id)
    assert answer["outcome"] == "complete"
    assert answer["request"]["reference"] == f"Claim/{claim_id}"
    assert answer["meta"]["versionId"] == "1"
    [number] = [i["value"] for i in answer["identifier"] if i["system"] == ATTESTATION]
    assert {"system": "urn:ehealth-gateway:claim", "value": claim_id} in answer["identifier"]
    assert answer["total"][0]["amount"] == {"value": 30.03, "currency": "EUR"}
    current = (await provider.get(f"/fhir/Claim/{claim_id}")).json()
    assert state_of(current) == "delivered"
    assert (await claim_row(app, claim_id)).attestation == number

    assert await worker.settle() == 1
    [settled] = await response_for(provider, claim_id)
    assert settled["id"] == answer["id"]
    assert settled["meta"]["versionId"] == "2"
    assert settled["payment"]["amount"]["value"] == 26.03
    assert state_of((await provider.get(f"/fhir/Claim/{claim_id}")).json()) == "settled"
    by_number = await provider.get("/fhir/ClaimResponse", params={"identifier": number})
    assert by_number.json()["total"] == 1

    report = await received(funds, "100")
    assert report["counts"]["claims"] == 1
    [attestation] = report["attestations"]
    assert attestation["idempotency_key"] == claim_id
    assert attestation["status"] == "settled"
    [job] = await job_rows(app, claim_id)
    assert (job.state, job.outcome, job.attempts) == ("done", "acknowledged", 1)

    # Nothing more to do; a second round changes nothing.
    assert await worker.deliver() == 0
    assert await worker.settle() == 0
    listed = await provider.get("/fhir/Claim", params={"state": "settled"})
    assert [e["resource"]["id"] for e in listed.json()["entry"]] == [claim_id]


async def test_refusal_reasons_reach_the_provider(
    provider: httpx.AsyncClient, worker: Worker
) -> None:
    unknown_code = (
        await post_claim(provider, claim(items=[item("999999", price=10.0)]), key="a")
    ).json()["id"]
    not_a_member = (await post_claim(provider, claim(patient=MARIE), key="b")).json()["id"]
    assert await worker.deliver() == 2

    [refused] = await response_for(provider, unknown_code)
    assert refused["outcome"] == "error"
    assert [
        (e["code"]["coding"][0]["code"], e["code"]["text"], e.get("itemSequence"))
        for e in refused["error"]
    ] == [("UNKNOWN_NOMENCLATURE_CODE", "Claim.item[0].productOrService.coding[0].code", 1)]
    assert state_of((await provider.get(f"/fhir/Claim/{unknown_code}")).json()) == "refused"

    [refused] = await response_for(provider, not_a_member)
    assert [(e["code"]["coding"][0]["code"], e["code"]["text"]) for e in refused["error"]] == [
        ("NOT_A_MEMBER", "Claim.patient.identifier.value")
    ]
    listed = await provider.get("/fhir/Claim", params={"state": "refused"})
    assert listed.json()["total"] == 2

    # A refusal attested nothing: the corrected claim needs no duplicate override (AT-7).
    corrected = await post_claim(provider, claim(patient=MARIE, insurer="300"), key="c")
    assert corrected.status_code == 202
    await worker.deliver()
    [accepted] = await response_for(provider, corrected.json()["id"])
    assert accepted["outcome"] == "complete"


async def test_cancel_is_forwarded_and_answers_once(
    provider: httpx.AsyncClient, worker: Worker, funds: MutualityApp, app: FastAPI
) -> None:
    claim_id = (await post_claim(provider, claim())).json()["id"]
    early = await provider.post(f"/fhir/Claim/{claim_id}/$cancel", json=cancel_params())
    assert early.status_code == 409  # not acknowledged yet
    await worker.deliver()

    first = await provider.post(f"/fhir/Claim/{claim_id}/$cancel", json=cancel_params("C"))
    assert first.status_code == 202, first.text
    again = await provider.post(f"/fhir/Claim/{claim_id}/$cancel", json=cancel_params("D"))
    assert again.status_code == 202
    assert again.headers["idempotent-replayed"] == "true"
    cancels = [j for j in await job_rows(app, claim_id) if j.kind == "cancel"]
    assert [(j.cancel_reason, j.state) for j in cancels] == [("C", "pending")]

    assert await worker.deliver() == 1
    [answer] = await response_for(provider, claim_id)
    assert answer["meta"]["versionId"] == "2"
    assert {"system": "urn:ehealth-gateway:mutuality-event", "code": "cancelled"} in answer["meta"][
        "tag"
    ]
    current = (await provider.get(f"/fhir/Claim/{claim_id}")).json()
    assert (current["status"], state_of(current)) == ("cancelled", "cancelled")
    report = await received(funds, "100")
    assert report["counts"]["cancelled"] == 1
    assert report["attestations"][0]["cancel_reason"] == "C"

    # The feed brings the cancellation again (and no settlement): nothing changes.
    await worker.settle()
    [answer] = await response_for(provider, claim_id)
    assert answer["meta"]["versionId"] == "2"
    third = await provider.post(f"/fhir/Claim/{claim_id}/$cancel", json=cancel_params("A"))
    assert third.status_code == 202
    assert third.json()["status"] == "cancelled"


async def test_cancel_checks(
    provider: httpx.AsyncClient, worker: Worker, client_for: ClientFactory
) -> None:
    refused_id = (await post_claim(provider, claim(patient=MARIE), key="a")).json()["id"]
    ok_id = (await post_claim(provider, claim(), key="b")).json()["id"]
    await worker.deliver()
    refused = await provider.post(f"/fhir/Claim/{refused_id}/$cancel", json=cancel_params())
    assert refused.status_code == 409
    bad = await provider.post(f"/fhir/Claim/{ok_id}/$cancel", json=cancel_params("Z"))
    assert bad.status_code == 422
    assert bad.json()["issue"][0]["expression"] == ["Parameters.parameter[0].valueCoding.code"]
    other = await client_for("prescriber", nihdi=OTHER_GP)
    assert (
        await other.post(f"/fhir/Claim/{ok_id}/$cancel", json=cancel_params())
    ).status_code == 403
    missing = await provider.post("/fhir/Claim/nope/$cancel", json=cancel_params())
    assert missing.status_code == 404
    # If-Match names the Claim's version the client saw: version 1 was the queued claim, the
    # fund's acknowledgement moved it on (FHIR R4 http.html#concurrency).
    seen = (await provider.get(f"/fhir/Claim/{ok_id}")).headers["etag"]
    assert seen != 'W/"1"'
    stale = await provider.post(
        f"/fhir/Claim/{ok_id}/$cancel", json=cancel_params(), headers={"If-Match": 'W/"1"'}
    )
    assert stale.status_code == 412, stale.text
    current = await provider.post(
        f"/fhir/Claim/{ok_id}/$cancel", json=cancel_params(), headers={"If-Match": seen}
    )
    assert current.status_code == 202, current.text


async def test_a_settlement_read_twice_is_applied_once(
    provider: httpx.AsyncClient, worker: Worker, app: FastAPI
) -> None:
    claim_id = (await post_claim(provider, claim())).json()["id"]
    await worker.deliver()
    assert await worker.settle() == 1
    async with app.state.sessions() as session, session.begin():
        await session.execute(update(fund_cursors).values(cursor=0))  # as if it crashed
    assert await worker.settle() == 0
    [answer] = await response_for(provider, claim_id)
    assert answer["meta"]["versionId"] == "2"
    async with app.state.sessions() as session:
        events = await session.scalar(select(func.count()).select_from(fund_events))
    assert events == 1


async def test_providers_see_only_their_own(
    provider: httpx.AsyncClient, worker: Worker, client_for: ClientFactory
) -> None:
    claim_id = (await post_claim(provider, claim())).json()["id"]
    await worker.deliver()
    [answer] = await response_for(provider, claim_id)
    other = await client_for("prescriber", nihdi=OTHER_GP)
    assert (await other.get(f"/fhir/Claim/{claim_id}")).status_code == 403
    assert (await other.get(f"/fhir/ClaimResponse/{answer['id']}")).status_code == 403
    assert (await other.get("/fhir/Claim")).json()["total"] == 0
    assert await response_for(other, claim_id) == []


async def test_architecture_4_operator_reads_no_claim_or_its_answer(
    provider: httpx.AsyncClient, worker: Worker, client_for: ClientFactory
) -> None:
    """The operator runs the claim queue with ``gateway claims list|retry`` (ids, funds, states,
    reason codes: test_cli.py); over FHIR he reads neither the claim nor the fund's answer, which
    say what care a patient had and what was paid. Each attempt is refused and audited."""
    claim_id = (await post_claim(provider, claim())).json()["id"]
    await worker.deliver()
    [answer] = await response_for(provider, claim_id)
    operator = await client_for("admin")

    attempts = [
        await operator.get(f"/fhir/Claim/{claim_id}"),
        await operator.get(f"/fhir/Claim/{claim_id}/_history/1"),
        await operator.get("/fhir/Claim", params={"state": "delivered"}),
        await operator.get("/fhir/Claim", params={"patient:identifier": JAN}),
        await operator.get(f"/fhir/ClaimResponse/{answer['id']}"),
        await operator.get("/fhir/ClaimResponse", params={"request": f"Claim/{claim_id}"}),
    ]
    assert [reason_of(r) for r in attempts] == ["wrong-role"] * len(attempts)
    assert all(JAN not in r.text for r in attempts)

    log = await operator.get("/fhir/AuditEvent", params={"_count": "100"})
    refused = [e for e in log.json()["entry"] if e["resource"]["outcomeDesc"] == "wrong-role"]
    assert len(refused) == len(attempts)


async def test_a_patient_sees_the_claims_about_them(
    provider: httpx.AsyncClient, worker: Worker, client_for: ClientFactory
) -> None:
    claim_id = (await post_claim(provider, claim())).json()["id"]
    await worker.deliver()
    jan = await client_for("patient", ssin=JAN)
    assert (await jan.get(f"/fhir/Claim/{claim_id}")).status_code == 200
    [answer] = await response_for(jan, claim_id)
    assert answer["outcome"] == "complete"
    assert (await jan.get("/fhir/ClaimResponse")).json()["total"] == 1

    marie = await client_for("patient", ssin=MARIE)
    denied = await marie.get(f"/fhir/Claim/{claim_id}")
    assert denied.status_code == 403
    assert await response_for(marie, claim_id) == []
    other = await marie.get("/fhir/Claim", params={"patient:identifier": JAN})
    assert other.status_code == 403
