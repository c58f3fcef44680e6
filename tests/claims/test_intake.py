"""POST /fhir/Claim over the real ASGI app: 202 and the outbox, idempotency, the duplicate rule.

Domain AT-3 (content), AT-7 (request key, duplicates), docs/architecture.md 4 (202 with Location).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from gateway.storage.tables import audit_events, claim_services
from tests.claims.conftest import claim_row, job_rows, post_claim, state_of
from tests.claims.factories import GP, JAN, MARIE, claim, item, with_override
from tests.fixtures.app import ClientFactory
from tests.fixtures.auth import OTHER_PRESCRIBER_NIHDI, PHARMACY_NIHDI


async def test_a_claim_is_stored_queued_and_answered_202(
    provider: httpx.AsyncClient, app: FastAPI
) -> None:
    response = await post_claim(provider, claim())
    assert response.status_code == 202, response.text
    body = response.json()
    assert response.headers["location"].endswith(f"/fhir/Claim/{body['id']}/_history/1")
    assert response.headers["etag"] == 'W/"1"'
    assert state_of(body) == "queued"
    assert body["status"] == "active"
    # The profile's fixed elements are filled in (BeEattestationClaim).
    assert body["priority"]["coding"][0]["code"] == "stat"
    assert body["insurance"][0]["focal"] is True
    # The request key is on the claim, in the provider's namespace (AT-7).
    assert {"system": f"urn:ehealth-gateway:request-key:{GP}", "value": "key-1"} in body[
        "identifier"
    ]
    [job] = await job_rows(app, body["id"])
    assert (job.kind, job.state, job.fund_code, job.attempts) == ("submit", "pending", "100", 0)
    assert (await claim_row(app, body["id"])).state == "queued"

    read = await provider.get(f"/fhir/Claim/{body['id']}")
    assert read.status_code == 200
    assert read.json()["id"] == body["id"]
    history = await provider.get(response.headers["location"])
    assert history.status_code == 200


async def test_the_same_key_twice_is_one_claim(provider: httpx.AsyncClient, app: FastAPI) -> None:
    first = await post_claim(provider, claim(), key="visit-42")
    again = await post_claim(provider, claim(), key="visit-42")
    assert first.status_code == again.status_code == 202
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["location"] == first.headers["location"]
    assert len(await job_rows(app)) == 1
    listed = await provider.get("/fhir/Claim")
    assert listed.json()["total"] == 1


async def test_the_claims_own_identifier_is_the_key_without_a_header(
    provider: httpx.AsyncClient, app: FastAPI
) -> None:
    own = [{"system": "urn:oid:1.2.3.4.5", "value": "invoice-2025-0007"}]
    first = await post_claim(provider, claim(identifier=own), key=None)
    again = await post_claim(provider, claim(identifier=own), key=None)
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert len(await job_rows(app)) == 1


async def test_a_request_key_is_required(provider: httpx.AsyncClient) -> None:
    response = await post_claim(provider, claim(), key=None)
    assert response.status_code == 422
    [issue] = response.json()["issue"]
    assert issue["expression"] == ["Claim.identifier"]
    assert issue["details"]["coding"][0]["code"] == "AT-7"


async def test_a_key_reused_for_other_content_is_refused(provider: httpx.AsyncClient) -> None:
    assert (await post_claim(provider, claim(), key="k")).status_code == 202
    other = await post_claim(provider, claim(items=[item("101076", price=32.97)]), key="k")
    assert other.status_code == 409
    [issue] = other.json()["issue"]
    assert issue["diagnostics"].startswith("IDEMPOTENCY_KEY_REUSED")
    assert issue["expression"] == ["Idempotency-Key"]


async def test_keys_are_per_provider(client_for: ClientFactory, app: FastAPI) -> None:
    one = await client_for("prescriber", nihdi=GP)
    two = await client_for("prescriber", nihdi=OTHER_PRESCRIBER_NIHDI)
    a = await post_claim(one, claim(), key="same")
    b = await post_claim(two, claim(provider=OTHER_PRESCRIBER_NIHDI), key="same")
    assert a.status_code == b.status_code == 202
    assert a.json()["id"] != b.json()["id"]
    assert len(await job_rows(app)) == 2


async def test_a_second_attestation_within_24_hours_needs_an_override(
    provider: httpx.AsyncClient, app: FastAPI
) -> None:
    assert (await post_claim(provider, claim(), key="a")).status_code == 202
    first_id = (await provider.get("/fhir/Claim")).json()["entry"][0]["resource"]["id"]

    again = await post_claim(provider, claim(), key="b")
    assert again.status_code == 409
    [issue] = again.json()["issue"]
    assert issue["severity"] == "warning"
    assert issue["code"] == "duplicate"
    assert issue["expression"] == ["Claim.item[0]"]
    assert issue["details"]["coding"][0]["code"] == "AT-7"
    assert f"Claim/{first_id}" in issue["diagnostics"]
    assert len(await job_rows(app)) == 1  # nothing stored

    # Another count, code or patient is another service.
    assert (await post_claim(provider, claim(items=[item(count=2)]), key="c")).status_code == 202
    assert (
        await post_claim(provider, claim(patient=MARIE, insurer="300"), key="d")
    ).status_code == 202

    overridden = await post_claim(provider, with_override(claim()), key="b")
    assert overridden.status_code == 202
    assert len(await job_rows(app)) == 4


async def test_the_duplicate_window_is_24_hours(provider: httpx.AsyncClient, app: FastAPI) -> None:
    assert (await post_claim(provider, claim(), key="a")).status_code == 202
    async with app.state.sessions() as session, session.begin():
        await session.execute(
            update(claim_services).values(
                created_at=claim_services.c.created_at - timedelta(hours=24, minutes=1)
            )
        )
    assert (await post_claim(provider, claim(), key="b")).status_code == 202


async def test_a_duplicate_item_names_its_position(provider: httpx.AsyncClient) -> None:
    assert (
        await post_claim(provider, claim(items=[item("101076", price=32.97)]), key="a")
    ).status_code == 202
    body = claim(items=[item("101032"), item("101076", price=32.97)])
    again = await post_claim(provider, body, key="b")
    assert again.status_code == 409
    assert [i["expression"] for i in again.json()["issue"]] == [["Claim.item[1]"]]


async def test_only_the_provider_attests_in_their_own_name(
    provider: httpx.AsyncClient, client_for: ClientFactory, app: FastAPI
) -> None:
    other = await post_claim(provider, claim(provider=OTHER_PRESCRIBER_NIHDI))
    assert other.status_code == 403
    assert other.json()["issue"][0]["diagnostics"].startswith("not-author")
    pharmacy = await client_for("pharmacist", nihdi=PHARMACY_NIHDI)
    assert (await post_claim(pharmacy, claim())).status_code == 403
    assert await job_rows(app) == []


async def test_a_fund_without_a_route_is_refused(provider: httpx.AsyncClient) -> None:
    response = await post_claim(provider, claim(insurer="500"))
    assert response.status_code == 422
    [issue] = response.json()["issue"]
    assert issue["expression"] == ["Claim.insurer.identifier.value"]


async def test_an_individual_fund_goes_to_its_union(
    provider: httpx.AsyncClient, app: FastAPI
) -> None:
    response = await post_claim(provider, claim(insurer="306", patient=MARIE))
    assert response.status_code == 202
    [job] = await job_rows(app)
    assert job.fund_code == "300"
    assert (await claim_row(app, response.json()["id"])).fund_code == "306"


@pytest.mark.parametrize(
    ("change", "expression", "rule"),
    [
        (
            {"patient": {"identifier": {"system": "x", "value": JAN}}},
            "Claim.patient.identifier.system",
            "ID-20",
        ),
        (
            {
                "provider": {
                    "identifier": {
                        "system": "https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/nihdi-professional",
                        "value": "19234012004",
                    }
                }
            },
            "Claim.provider.identifier.value",
            "ID-7",
        ),
        (
            {"item": [item("12345", sequence=1)]},
            "Claim.item[0].productOrService.coding[0].code",
            "ID-18",
        ),
        ({"item": [item(serviced="2999-01-01", sequence=1)]}, "Claim.item[0].servicedDate", "AT-3"),
        ({"item": [item(count=0, sequence=1)]}, "Claim.item[0].quantity.value", "AT-3"),
        ({"subType": None}, "Claim.subType", "AT-2"),
    ],
)
async def test_violations_name_the_element_and_the_rule(
    provider: httpx.AsyncClient, change: dict[str, Any], expression: str, rule: str
) -> None:
    body = claim()
    for key, value in change.items():
        if value is None:
            body.pop(key)
        else:
            body[key] = value
    response = await post_claim(provider, body)
    assert response.status_code == 422, response.text
    issues = response.json()["issue"]
    assert (expression, rule) in [
        (i["expression"][0], i["details"]["coding"][0]["code"]) for i in issues
    ]
    assert JAN not in response.text


async def test_a_structural_error_names_the_element(provider: httpx.AsyncClient) -> None:
    response = await post_claim(provider, claim(use=7))
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"] == ["Claim.use"]


async def test_intake_is_audited_in_its_transaction(
    provider: httpx.AsyncClient, app: FastAPI
) -> None:
    created = (await post_claim(provider, claim())).json()
    await provider.get(f"/fhir/Claim/{created['id']}")
    async with app.state.sessions() as session:
        rows = (
            await session.execute(
                select(
                    audit_events.c.action, audit_events.c.resource_type, audit_events.c.reason
                ).order_by(audit_events.c.seq)
            )
        ).all()
    assert [tuple(r) for r in rows if r.resource_type == "Claim"] == [
        ("create", "Claim", "permit-author"),
        ("read", "Claim", "permit-author"),
    ]
