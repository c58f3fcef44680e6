"""Cancellation of an attestation with a reason A..G, idempotent (AT-6, AT-7)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from fhir.resources.R4B.claimresponse import ClaimResponse

from mutualities import systems
from tests.fixtures.clock import Clock
from tests.mutualities.factories import cancel, claim, error_codes, feed_answers, submit


async def accepted(client: httpx.AsyncClient, key: str = "k") -> str:
    answer = orjson.loads((await submit(client, claim(), key)).content)
    number: str = answer["identifier"][0]["value"]
    return number


async def post_cancel(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    response = await client.post("/funds/100/Claim/$cancel", json=body)
    assert response.status_code == 200
    ClaimResponse.model_validate_json(response.content)
    return response


async def test_cancel_is_idempotent_and_the_attestation_never_settles(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    number = await accepted(client)
    first = await post_cancel(client, cancel(number, "B"))
    answer = orjson.loads(first.content)
    assert answer["outcome"] == "complete"
    assert answer["identifier"][0] == {"system": systems.ATTESTATION, "value": number}
    assert answer["meta"]["tag"] == [
        {"system": systems.MUTUALITY_EVENT, "code": "cancelled"},
        {"system": systems.CANCEL_REASON, "code": "B"},
    ]
    clock.advance(seconds=1)
    # AT-7: cancelling twice returns the first result, even with another reason.
    second = await post_cancel(client, cancel(number, "D"))
    assert second.content == first.content
    assert second.headers["idempotent-replayed"] == "true"
    clock.advance(minutes=10)
    events = orjson.loads((await client.get("/funds/100/settlements")).content)
    assert [e["meta"]["tag"][0]["code"] for e in feed_answers(events)] == ["cancelled"]
    report = (await client.get("/funds/100/admin/received")).json()
    assert report["counts"] | {"cancelled": 1, "settled": 0} == report["counts"]
    assert report["attestations"][0]["status"] == "cancelled"
    assert report["attestations"][0]["cancel_reason"] == "B"


async def test_a_settled_attestation_can_be_cancelled(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    number = await accepted(client)
    clock.advance(minutes=2)
    await post_cancel(client, cancel(number, "A"))
    events = orjson.loads((await client.get("/funds/100/settlements")).content)
    assert [e["meta"]["tag"][0]["code"] for e in feed_answers(events)] == [
        "settled",
        "cancelled",
    ]
    current = await client.get("/funds/100/ClaimResponse", params={"request-key": "k"})
    assert orjson.loads(current.content)["entry"][0]["resource"]["id"] == f"{number}-cancelled"


async def test_a_cancelled_service_may_be_attested_again(client: httpx.AsyncClient) -> None:
    number = await accepted(client, "first")
    await post_cancel(client, cancel(number, "C"))
    again = orjson.loads((await submit(client, claim(), "corrected")).content)
    assert again["outcome"] == "complete"
    assert again["identifier"][0]["value"] != number


async def test_refusals(client: httpx.AsyncClient) -> None:
    number = await accepted(client)
    unknown = orjson.loads((await post_cancel(client, cancel("100-1-250314-9999999-01"))).content)
    assert unknown["outcome"] == "error"
    assert error_codes(unknown) == [("UNKNOWN_ATTESTATION", "Claim.identifier[0].value")]
    bad_reason = orjson.loads((await post_cancel(client, cancel(number, "Z"))).content)
    assert error_codes(bad_reason) == [
        ("INVALID_CANCEL_REASON", "Claim.supportingInfo[0].code.coding[0].code")
    ]
    no_reason = orjson.loads((await post_cancel(client, cancel(number, None))).content)
    assert error_codes(no_reason) == [("INVALID_CANCEL_REASON", "Claim.supportingInfo")]
    no_number = cancel(number)
    del no_number["identifier"]
    assert error_codes(orjson.loads((await post_cancel(client, no_number)).content)) == [
        ("INVALID_CLAIM", "Claim.identifier")
    ]
    # None of these cancelled anything.
    report = (await client.get("/funds/100/admin/received")).json()
    assert report["counts"]["cancelled"] == 0
