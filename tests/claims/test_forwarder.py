"""Retry edge cases of the forwarder against respx routes (no fund process).

Transient failures (503, a dropped connection, a timeout) are retried with the same idempotency
key after an exponential, jittered, persisted backoff; answers no retry can change, and the last
attempt, park the delivery as failed, visible to the provider and to operators. Leases: a worker
whose lease ran out records nothing; several forwarders never share a job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
import respx
from fastapi import FastAPI
from sqlalchemy import func, select

from gateway.claims.model import JobKind
from gateway.claims.outbox import Outbox
from gateway.storage.tables import fund_cursors, resource_versions
from tests.claims.conftest import (
    FUND_URLS,
    Clock,
    Worker,
    claim_row,
    job_rows,
    post_claim,
    response_for,
    state_of,
)
from tests.claims.factories import claim, item

MESSAGE_URL = FUND_URLS["100"] + "/$process-message"
FEED_URL = FUND_URLS["100"] + "/settlements"
ATTESTATION = "https://www.mycarenet.be/eattest"


def ack(
    key: str, number: str = "100-1-251125-0000001-03", event: str = "acknowledged"
) -> dict[str, Any]:
    """A fund's ClaimResponse as the mock funds write it (mutualities/README.md)."""
    return {
        "resourceType": "ClaimResponse",
        "id": number if event == "acknowledged" else f"{number}-{event}",
        "meta": {"tag": [{"system": "urn:ehealth-gateway:mutuality-event", "code": event}]},
        "identifier": [{"system": ATTESTATION, "value": number}],
        "status": "active",
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/claim-type",
                    "code": "professional",
                }
            ]
        },
        "use": "claim",
        "patient": {
            "identifier": {
                "system": "https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/ssin",
                "value": "85073003328",
            }
        },
        "created": "2026-11-25T10:00:00+00:00",
        "insurer": {
            "identifier": {
                "system": "https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/insurancenumber",
                "value": "100",
            }
        },
        "request": {"identifier": {"system": "urn:ehealth-gateway:idempotency-key", "value": key}},
        "outcome": "complete",
        "disposition": "Attestation accepted",
    }


def message(answer: dict[str, Any]) -> dict[str, Any]:
    """A fund's response message (hl7-be BeEattestationResponse) around its ClaimResponse."""
    return {
        "resourceType": "Bundle",
        "id": f"response-{answer['id']}",
        "type": "message",
        "timestamp": answer.get("created", "2026-11-25T10:00:00+00:00"),
        "entry": [
            {
                "fullUrl": "urn:uuid:4f0c1b52-7d1e-4a55-9a43-1d2f3b4c5d6e",
                "resource": {
                    "resourceType": "MessageHeader",
                    "eventCoding": {
                        "system": "https://www.ehealth.fgov.be/standards/fhir/mycarenet/CodeSystem/message-events",
                        "code": "eattestresponse-create",
                    },
                    "source": {"endpoint": "urn:fund:100"},
                },
            },
            {"fullUrl": "urn:uuid:9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "resource": answer},
        ],
    }


def unavailable() -> httpx.Response:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "transient",
                "details": {
                    "coding": [
                        {"system": "urn:ehealth-gateway:mutuality-error", "code": "UNAVAILABLE"}
                    ]
                },
            }
        ],
    }
    return httpx.Response(503, json=body, headers={"Retry-After": "1"})


def feed(events: list[dict[str, Any]], since: int, cursor: int) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(events),
            "link": [{"relation": "next", "url": f"{FEED_URL}?since={cursor}&_count=50"}],
            "entry": [{"resource": e} for e in events],
        },
    )


@pytest.fixture
def funds_mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def rx(make_worker: Callable[..., Worker], funds_mock: respx.MockRouter) -> Worker:
    return make_worker()


def keys_sent(route: respx.Route) -> list[str]:
    return [call.request.headers["idempotency-key"] for call in route.calls]


async def test_a_503_is_retried_with_the_same_key_after_the_backoff(
    provider: httpx.AsyncClient,
    rx: Worker,
    funds_mock: respx.MockRouter,
    clock: Clock,
    app: FastAPI,
) -> None:
    claim_id = (await post_claim(provider, claim())).json()["id"]
    route = funds_mock.post(MESSAGE_URL).mock(
        side_effect=[unavailable(), httpx.Response(200, json=message(ack(claim_id)))]
    )
    assert await rx.deliver() == 1
    [job] = await job_rows(app, claim_id)
    assert (job.state, job.attempts) == ("pending", 1)
    assert job.last_error == "FUND_UNAVAILABLE: HTTP 503 UNAVAILABLE"
    assert await rx.deliver() == 0  # not due yet: the backoff is persisted
    clock.advance(seconds=1.5)
    assert await rx.deliver() == 1
    assert keys_sent(route) == [claim_id, claim_id]
    bodies = [orjson.loads(call.request.content) for call in route.calls]
    # the same message: its id is the key, its Claim the same (the envelope's uuids may differ)
    assert [body["id"] for body in bodies] == [claim_id, claim_id]
    claims_sent = [body["entry"][-1]["resource"] for body in bodies]
    for party in ("patient", "provider"):  # by identifier (the reference is to this message)
        assert claims_sent[0].pop(party)["identifier"] == claims_sent[1].pop(party)["identifier"]
    assert claims_sent[0] == claims_sent[1]
    assert claims_sent[0]["resourceType"] == "Claim"
    assert "meta" not in claims_sent[0]
    [answer] = await response_for(provider, claim_id)
    assert answer["outcome"] == "complete"


@pytest.mark.parametrize(
    "failure",
    [
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("timed out"),
    ],
)
async def test_no_answer_is_retried_with_the_same_key(
    provider: httpx.AsyncClient,
    rx: Worker,
    funds_mock: respx.MockRouter,
    clock: Clock,
    failure: Exception,
) -> None:
    claim_id = (await post_claim(provider, claim())).json()["id"]
    route = funds_mock.post(MESSAGE_URL).mock(
        side_effect=[failure, httpx.Response(200, json=message(ack(claim_id)))]
    )
    await rx.deliver()
    clock.advance(seconds=5)
    await rx.deliver()
    assert keys_sent(route) == [claim_id, claim_id]
    assert len(await response_for(provider, claim_id)) == 1


@pytest.mark.parametrize(
    "body",
    [
        "bare",  # a ClaimResponse that is not in a response message
        "two",  # a message with two ClaimResponses: which one is the answer?
        "none",  # a message with only an OperationOutcome
    ],
)
async def test_a_200_that_is_not_a_response_message_is_tried_again(
    provider: httpx.AsyncClient, rx: Worker, funds_mock: respx.MockRouter, app: FastAPI, body: str
) -> None:
    claim_id = (await post_claim(provider, claim())).json()["id"]
    answer = ack(claim_id)
    wrapped = message(answer)
    if body == "two":
        wrapped["entry"].append(
            {"fullUrl": "urn:uuid:0b1c2d3e-4f50-4a61-8b72-93a4b5c6d7e8", "resource": answer}
        )
    if body == "none":
        wrapped["entry"][-1]["resource"] = {"resourceType": "OperationOutcome", "issue": []}
    sent = answer if body == "bare" else wrapped
    funds_mock.post(MESSAGE_URL).mock(return_value=httpx.Response(200, json=sent))
    await rx.deliver()
    [job] = await job_rows(app, claim_id)
    assert (job.state, job.last_error) == ("pending", "BAD_ANSWER: 200 without a ClaimResponse")
    assert await response_for(provider, claim_id) == []


async def test_after_the_last_attempt_the_claim_is_parked_as_failed(
    provider: httpx.AsyncClient,
    rx: Worker,
    funds_mock: respx.MockRouter,
    clock: Clock,
    app: FastAPI,
) -> None:
    claim_id = (await post_claim(provider, claim())).json()["id"]
    route = funds_mock.post(MESSAGE_URL).mock(return_value=unavailable())
    for _ in range(6):
        await rx.deliver()
        clock.advance(seconds=120)
    assert route.call_count == 4  # claim_max_attempts
    [job] = await job_rows(app, claim_id)
    assert (job.state, job.attempts) == ("failed", 4)
    assert job.last_error.startswith("FUND_UNAVAILABLE: HTTP 503")
    assert (await claim_row(app, claim_id)).state == "failed"
    current = (await provider.get(f"/fhir/Claim/{claim_id}")).json()
    assert state_of(current) == "failed"
    failed = await provider.get("/fhir/Claim", params={"state": "failed"})
    assert [e["resource"]["id"] for e in failed.json()["entry"]] == [claim_id]


async def test_an_answer_no_retry_can_change_parks_at_once(
    provider: httpx.AsyncClient, rx: Worker, funds_mock: respx.MockRouter, app: FastAPI
) -> None:
    claim_id = (await post_claim(provider, claim())).json()["id"]
    reused = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "conflict",
                "details": {"coding": [{"code": "IDEMPOTENCY_KEY_REUSED"}]},
            }
        ],
    }
    funds_mock.post(MESSAGE_URL).mock(return_value=httpx.Response(409, json=reused))
    await rx.deliver()
    [job] = await job_rows(app, claim_id)
    assert (job.state, job.attempts) == ("failed", 1)
    assert job.last_error == "FUND_REFUSED_REQUEST: HTTP 409 IDEMPOTENCY_KEY_REUSED"
    assert (await claim_row(app, claim_id)).state == "failed"


async def test_the_backoff_is_exponential_with_bounded_jitter(
    make_worker: Callable[..., Worker],
) -> None:
    worker = make_worker(
        claim_backoff_initial_seconds=2.0,
        claim_backoff_max_seconds=20.0,
        claim_backoff_jitter_seconds=0.5,
        claim_max_attempts=6,
    )
    delay = worker.forwarder.delay
    for attempt, base in [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0)]:
        for _ in range(20):
            value = delay(attempt)
            assert value is not None
            assert base <= value <= base + 0.5
    assert delay(5) == 20.0  # capped
    assert delay(6) is None  # the last attempt: stop
    assert delay(1, retry_after=9.0) == 9.0  # the fund asked for a longer pause
    assert delay(1, retry_after=600.0) == 20.0


async def test_a_worker_whose_lease_ran_out_records_nothing(
    provider: httpx.AsyncClient, rx: Worker, clock: Clock, app: FastAPI
) -> None:
    claim_id = (await post_claim(provider, claim())).json()["id"]
    lease = timedelta(seconds=30)
    async with app.state.sessions() as session, session.begin():
        [stale] = await Outbox(session).claim_due(clock(), lease, limit=10)
    # Before the lease expires nobody else takes the job ...
    async with app.state.sessions() as session, session.begin():
        assert await Outbox(session).claim_due(clock(), lease, limit=10) == []
    # ... after it, another worker does (the first looks dead).
    clock.advance(seconds=31)
    async with app.state.sessions() as session, session.begin():
        [fresh] = await Outbox(session).claim_due(clock(), lease, limit=10)
    assert fresh.attempts == 2
    assert fresh.lease_token != stale.lease_token

    await rx.forwarder._answered(stale, ack(claim_id))  # the first wakes up late
    assert await response_for(provider, claim_id) == []
    await rx.forwarder._answered(fresh, ack(claim_id))
    await rx.forwarder._answered(fresh, ack(claim_id))  # and a duplicate record changes nothing
    [answer] = await response_for(provider, claim_id)
    assert answer["meta"]["versionId"] == "1"
    [job] = await job_rows(app, claim_id)
    assert (job.state, job.attempts) == ("done", 2)


async def test_two_forwarders_never_send_one_job_twice(
    provider: httpx.AsyncClient,
    make_worker: Callable[..., Worker],
    funds_mock: respx.MockRouter,
    app: FastAPI,
) -> None:
    ids = []
    for n in range(12):
        body = claim(items=[item(count=n + 1, price=10.0)])
        ids.append((await post_claim(provider, body, key=f"k{n}")).json()["id"])

    def answer(request: httpx.Request) -> httpx.Response:
        key = request.headers["idempotency-key"]
        return httpx.Response(
            200, json=message(ack(key, number=f"100-1-251125-{ids.index(key):07d}-00"))
        )

    route = funds_mock.post(MESSAGE_URL).mock(side_effect=answer)
    one = make_worker(worker_concurrency=4)
    two = make_worker(worker_concurrency=4)
    while True:
        claimed = await asyncio.gather(one.forwarder.tick(), two.forwarder.tick())
        await asyncio.gather(one.forwarder.drain(), two.forwarder.drain())
        if not any(claimed):
            break
    assert sorted(keys_sent(route)) == sorted(ids)
    async with app.state.sessions() as session:
        responses = await session.scalar(
            select(func.count())
            .select_from(resource_versions)
            .where(resource_versions.c.resource_type == "ClaimResponse")
        )
    assert responses == 12


async def test_a_settlement_ahead_of_the_acknowledgement_is_the_answer(
    provider: httpx.AsyncClient,
    rx: Worker,
    funds_mock: respx.MockRouter,
    clock: Clock,
    app: FastAPI,
) -> None:
    """The fund committed, the connection dropped, the feed brought the settlement first."""
    claim_id = (await post_claim(provider, claim())).json()["id"]
    route = funds_mock.post(MESSAGE_URL).mock(side_effect=httpx.RemoteProtocolError("dropped"))
    await rx.deliver()
    funds_mock.get(FEED_URL).mock(
        return_value=feed([message(ack(claim_id, event="settled"))], 0, 1)
    )
    funds_mock.get(FUND_URLS["300"] + "/settlements").mock(return_value=feed([], 0, 0))
    assert await rx.settle() == 1
    [answer] = await response_for(provider, claim_id)
    assert answer["meta"]["versionId"] == "1"
    assert {"system": "urn:ehealth-gateway:mutuality-event", "code": "settled"} in answer["meta"][
        "tag"
    ]
    [job] = await job_rows(app, claim_id)
    assert (job.state, job.outcome) == ("done", "settled")
    clock.advance(seconds=60)
    assert await rx.deliver() == 0  # nothing left to send
    assert route.call_count == 1
    # The acknowledgement replayed late would not move the answer back.
    async with app.state.sessions() as session:
        submission = await Outbox(session).find(claim_id, JobKind.SUBMIT)
    assert submission is not None
    await rx.forwarder._answered(submission, ack(claim_id))
    [answer] = await response_for(provider, claim_id)
    assert answer["meta"]["versionId"] == "1"


async def test_feed_events_of_other_senders_are_skipped(
    provider: httpx.AsyncClient, rx: Worker, funds_mock: respx.MockRouter, app: FastAPI
) -> None:
    funds_mock.get(FEED_URL).mock(
        side_effect=[
            feed([message(ack("not-ours", event="settled"))], 0, 1),
            feed([], 1, 1),
        ]
    )
    funds_mock.get(FUND_URLS["300"] + "/settlements").mock(return_value=feed([], 0, 0))
    assert await rx.settle() == 0
    assert await rx.settle() == 0
    async with app.state.sessions() as session:
        cursor = await session.scalar(
            select(fund_cursors.c.cursor).where(fund_cursors.c.fund_code == "100")
        )
    assert cursor == 1


async def test_a_refused_cancellation_leaves_the_attestation(
    provider: httpx.AsyncClient, rx: Worker, funds_mock: respx.MockRouter, app: FastAPI
) -> None:
    claim_id = (await post_claim(provider, claim())).json()["id"]
    route = funds_mock.post(MESSAGE_URL)
    route.mock(return_value=httpx.Response(200, json=message(ack(claim_id))))
    await rx.deliver()
    refusal = {
        "resourceType": "ClaimResponse",
        "id": "x",
        "meta": {"tag": [{"system": "urn:ehealth-gateway:mutuality-event", "code": "rejected"}]},
        "outcome": "error",
        "error": [
            {
                "code": {
                    "coding": [{"code": "UNKNOWN_ATTESTATION"}],
                    "text": "Claim.identifier[0].value",
                }
            }
        ],
    }
    route.mock(return_value=httpx.Response(200, json=message(refusal)))
    reason = {"resourceType": "Parameters", "parameter": [{"name": "reason", "valueCode": "B"}]}
    assert (await provider.post(f"/fhir/Claim/{claim_id}/$cancel", json=reason)).status_code == 202
    await rx.deliver()
    request = orjson.loads(route.calls[-1].request.content)
    header, *_, claim_entry = request["entry"]
    assert header["resource"]["eventCoding"]["code"] == "eattest-cancel"
    assert request["id"] == route.calls[-1].request.headers["idempotency-key"]
    sent = claim_entry["resource"]
    assert sent["identifier"] == [{"system": ATTESTATION, "value": "100-1-251125-0000001-03"}]
    assert sent["supportingInfo"][0]["code"]["coding"][0]["code"] == "B"
    [job] = [j for j in await job_rows(app, claim_id) if j.kind == JobKind.CANCEL.value]
    assert (job.state, job.outcome, job.last_error) == (
        "done",
        "refused",
        "CANCEL_REFUSED: UNKNOWN_ATTESTATION",
    )
    assert state_of((await provider.get(f"/fhir/Claim/{claim_id}")).json()) == "delivered"


async def test_a_fund_no_longer_configured_parks_its_deliveries(
    provider: httpx.AsyncClient, make_worker: Callable[..., Worker], app: FastAPI
) -> None:
    claim_id = (await post_claim(provider, claim(insurer="300", patient="93051822361"))).json()[
        "id"
    ]
    only_100 = make_worker(mutuality_urls={"100": FUND_URLS["100"]})
    await only_100.deliver()
    [job] = await job_rows(app, claim_id)
    assert job.state == "failed"
    assert job.last_error == "NO_ROUTE: no URL configured for fund 300"
    assert (await claim_row(app, claim_id)).state == "failed"
