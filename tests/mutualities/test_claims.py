"""Claim intake over HTTP (in process): acknowledgement, every refusal, idempotency (AT-4, AT-5, AT-7)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from fhir.resources.R4B.claimresponse import ClaimResponse
from fhir.resources.R4B.operationoutcome import OperationOutcome

from mutualities import systems
from tests.fixtures.clock import Clock
from tests.mutualities.factories import (
    GP,
    JAN,
    MARIE,
    NOBODY,
    adjudication,
    claim,
    error_codes,
    item,
    submit,
)

NUMBER = re.compile(r"^100-1-250314-\d{7}-\d{2}$")


def _valid(body: bytes) -> dict[str, Any]:
    ClaimResponse.model_validate_json(body)  # a valid FHIR R4 ClaimResponse
    data: dict[str, Any] = orjson.loads(body)
    return data


async def test_acknowledges_with_attestation_number_and_legal_fee(
    client: httpx.AsyncClient,
) -> None:
    body = claim(items=[item("101032"), item("103132", count=2)])
    response = await submit(client, body, "key-1")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/fhir+json"
    answer = _valid(response.content)
    assert answer["outcome"] == "complete"
    assert answer["meta"]["tag"][0] == {"system": systems.MUTUALITY_EVENT, "code": "acknowledged"}
    [identifier] = answer["identifier"]
    assert identifier["system"] == "https://www.mycarenet.be/eattest"
    assert NUMBER.match(identifier["value"])
    assert answer["request"]["identifier"] == {"system": systems.IDEMPOTENCY_KEY, "value": "key-1"}
    assert answer["insurer"]["identifier"]["value"] == "100"
    # AT-4: the legal fee per service (fee x count), nothing promised about reimbursement yet.
    first, second = answer["addItem"]
    assert (first["itemSequence"], adjudication(first, "intreatment")) == ([1], 30.03)
    assert (second["itemSequence"], adjudication(second, "intreatment")) == ([2], 90.70)
    # hl7-be BeEattestationClaimResponse: per service its provider, code, date, count and fees.
    assert second["productOrService"]["coding"][0]["code"] == "103132"
    assert (second["servicedDate"], second["quantity"]) == ("2025-03-14", {"value": 2})
    assert (second["unitPrice"]["value"], second["net"]["value"]) == (45.35, 90.70)
    assert second["provider"][0]["identifier"]["value"] == "19234011004"
    assert second["provider"][0]["reference"] == answer["requestor"]["reference"]
    assert answer["total"][0]["amount"] == {"value": 120.73, "currency": "EUR"}
    assert "payment" not in answer
    assert "error" not in answer


async def test_numbers_are_unique_per_fund(client: httpx.AsyncClient) -> None:
    first = orjson.loads((await submit(client, claim(), "a")).content)
    second = orjson.loads((await submit(client, claim(items=[item("101076")]), "b")).content)
    assert first["identifier"][0]["value"] != second["identifier"][0]["value"]


async def test_refuses_a_patient_who_is_not_a_member(client: httpx.AsyncClient) -> None:
    for patient in (MARIE, NOBODY, "12345678901"):  # another fund's member, fund 400, unknown
        response = await submit(client, claim(patient=patient), f"key-{patient}")
        answer = _valid(response.content)
        assert response.status_code == 200
        assert answer["outcome"] == "error"
        assert "identifier" not in answer  # no attestation number on a refusal
        assert error_codes(answer) == [("NOT_A_MEMBER", "Claim.patient.identifier.value")]


async def test_refuses_an_unknown_nomenclature_code(client: httpx.AsyncClient) -> None:
    body = claim(items=[item("101032"), item("999999")])
    answer = _valid((await submit(client, body, "k")).content)
    assert answer["outcome"] == "error"
    [error] = answer["error"]
    assert error["itemSequence"] == 2
    assert error["code"]["coding"][0]["system"] == "urn:ehealth-gateway:mutuality-error"
    assert error["code"]["coding"][0]["code"] == "UNKNOWN_NOMENCLATURE_CODE"
    expression = "Claim.item[1].productOrService.coding[0].code"
    assert error["code"]["text"] == expression
    assert error["extension"] == [{"url": systems.ERROR_EXPRESSION, "valueString": expression}]


async def test_refuses_a_date_in_the_future(client: httpx.AsyncClient) -> None:
    answer = _valid((await submit(client, claim(items=[item(serviced="2025-03-15")]), "k")).content)
    assert error_codes(answer) == [("FUTURE_DATE", "Claim.item[0].servicedDate")]


async def test_today_is_a_brussels_date(client: httpx.AsyncClient, clock: Clock) -> None:
    # 23:30 UTC on 14 March is already 15 March in Brussels.
    clock.now = datetime(2025, 3, 14, 23, 30, tzinfo=UTC)
    answer = _valid((await submit(client, claim(items=[item(serviced="2025-03-15")]), "k")).content)
    assert answer["outcome"] == "complete"


async def test_refuses_a_duplicate_sent_under_another_key(client: httpx.AsyncClient) -> None:
    accepted = _valid((await submit(client, claim(), "first")).content)
    assert accepted["outcome"] == "complete"
    duplicate = _valid((await submit(client, claim(), "second")).content)
    assert error_codes(duplicate) == [("DUPLICATE_ATTESTATION", "Claim.item[0]")]
    assert duplicate["error"][0]["itemSequence"] == 1
    # Same service with another count, code, date or provider is another service.
    other = claim(items=[item(count=2)])
    assert _valid((await submit(client, other, "third")).content)["outcome"] == "complete"


async def test_refuses_the_same_service_twice_in_one_claim(client: httpx.AsyncClient) -> None:
    answer = _valid((await submit(client, claim(items=[item(), item()]), "k")).content)
    assert error_codes(answer) == [("DUPLICATE_ATTESTATION", "Claim.item[1]")]


async def test_refuses_a_claim_addressed_to_another_fund(client: httpx.AsyncClient) -> None:
    answer = _valid((await submit(client, claim(insurer="300"), "k")).content)
    assert error_codes(answer) == [("WRONG_INSURER", "Claim.insurer.identifier.value")]


async def test_lists_every_missing_or_malformed_element(client: httpx.AsyncClient) -> None:
    body = claim(items=[item(serviced="2025-03"), item(count=0)])
    del body["provider"]
    answer = _valid((await submit(client, body, "k")).content)
    assert answer["outcome"] == "error"
    assert error_codes(answer) == [
        ("INVALID_CLAIM", "Claim.provider"),
        ("INVALID_CLAIM", "Claim.item[0].servicedDate"),
        ("INVALID_CLAIM", "Claim.item[1].quantity.value"),
    ]


async def test_a_create_carries_no_attestation_number(client: httpx.AsyncClient) -> None:
    body = claim(identifier=[{"system": systems.ATTESTATION, "value": "100-1-250314-0000001-10"}])
    answer = _valid((await submit(client, body, "k")).content)
    assert error_codes(answer) == [("INVALID_CLAIM", "Claim.identifier[0]")]


async def test_replay_of_a_key_is_byte_identical_and_attested_once(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    first = await submit(client, claim(), "same-key")
    clock.advance(seconds=5)
    # The forwarder may rebuild the Claim (new created timestamp): still the same claim.
    second = await submit(client, claim(created="2025-03-14T10:00:05+01:00"), "same-key")
    assert second.status_code == 200
    assert second.content == first.content
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    report = (await client.get("/funds/100/admin/received")).json()
    assert report["counts"]["accepted"] == 1
    assert report["counts"]["deliveries"] == 2
    assert report["attestations"][0]["deliveries"] == 2


async def test_replay_of_a_refusal_is_identical_too(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    first = await submit(client, claim(items=[item(serviced="2025-03-15")]), "k")
    clock.advance(days=2)  # the date is no longer in the future, the answer stays the same
    second = await submit(client, claim(items=[item(serviced="2025-03-15")]), "k")
    assert second.content == first.content
    assert error_codes(orjson.loads(second.content)) == [
        ("FUTURE_DATE", "Claim.item[0].servicedDate")
    ]


async def test_a_key_reused_for_another_claim_is_a_conflict(client: httpx.AsyncClient) -> None:
    await submit(client, claim(), "k")
    response = await submit(client, claim(items=[item("101076")]), "k")
    assert response.status_code == 409
    OperationOutcome.model_validate_json(response.content)
    issue = orjson.loads(response.content)["issue"][0]
    assert (issue["code"], issue["details"]["coding"][0]["code"]) == (
        "conflict",
        "IDEMPOTENCY_KEY_REUSED",
    )


async def test_the_key_and_the_claim_are_required(client: httpx.AsyncClient) -> None:
    response = await client.post("/funds/100/Claim", json=claim())
    assert response.status_code == 400
    assert orjson.loads(response.content)["issue"][0]["details"]["coding"][0]["code"] == (
        "MISSING_IDEMPOTENCY_KEY"
    )
    for content in (b"not json", b"[]", orjson.dumps({"resourceType": "Patient"})):
        response = await client.post(
            "/funds/100/Claim", content=content, headers={"Idempotency-Key": "k"}
        )
        assert response.status_code == 400
        OperationOutcome.model_validate_json(response.content)


async def test_an_unknown_fund_is_404(client: httpx.AsyncClient) -> None:
    response = await submit(client, claim(insurer="200"), "k", fund="200")
    assert response.status_code == 404
    assert orjson.loads(response.content)["issue"][0]["code"] == "not-found"


async def test_funds_of_one_process_keep_separate_stores(client: httpx.AsyncClient) -> None:
    answer = _valid((await submit(client, claim(patient=MARIE, insurer="300"), "k", "300")).content)
    assert answer["identifier"][0]["value"].startswith("300-1-")
    assert (await client.get("/funds/100/admin/received")).json()["counts"]["claims"] == 0
    # The same key at another fund is another claim.
    assert _valid((await submit(client, claim(), "k")).content)["outcome"] == "complete"


async def test_provider_and_patient_in_the_answer(client: httpx.AsyncClient) -> None:
    answer = _valid((await submit(client, claim(), "k")).content)
    assert answer["patient"]["identifier"] == {"system": systems.SSIN, "value": JAN}
    assert answer["requestor"]["identifier"] == {"system": systems.NIHDI_PROFESSIONAL, "value": GP}


async def test_concurrent_deliveries_attest_once(client: httpx.AsyncClient) -> None:
    same_key = await asyncio.gather(*[submit(client, claim(), "k") for _ in range(10)])
    assert len({response.content for response in same_key}) == 1
    other_keys = await asyncio.gather(
        *[submit(client, claim(items=[item("101076")]), f"other-{i}") for i in range(10)]
    )
    outcomes = [orjson.loads(response.content)["outcome"] for response in other_keys]
    assert sorted(outcomes) == ["complete"] + ["error"] * 9
    report = (await client.get("/funds/100/admin/received")).json()
    assert report["counts"]["accepted"] == 2
