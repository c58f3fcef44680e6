"""Claims searched by identifier are no existence oracle: a fund's answer found by its attestation
number or by its Claim, when it is not the caller's, reads exactly like one that does not exist
(docs/access.md). The provider who sent the claim and the patient it is about find it."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tests.claims.conftest import Worker, post_claim, response_for
from tests.claims.factories import JAN, MARIE, OTHER_GP, claim
from tests.fixtures.app import ClientFactory

ATTESTATION = "https://www.mycarenet.be/eattest"
URL = "/fhir/ClaimResponse"


def comparable(response: httpx.Response) -> tuple[int, str, dict[str, Any]]:
    body = response.json()
    kept = {k: v for k, v in body.items() if k not in ("id", "meta", "timestamp", "link")}
    relations = sorted(link["relation"] for link in body.get("link", []))
    return response.status_code, response.headers["content-type"], {**kept, "link": relations}


async def test_sec_identifier_search_is_no_oracle_claims(
    provider: httpx.AsyncClient, worker: Worker, client_for: ClientFactory
) -> None:
    claim_id = (await post_claim(provider, claim(patient=JAN))).json()["id"]
    await worker.deliver()
    [answer] = await response_for(provider, claim_id)
    [number] = [i["value"] for i in answer["identifier"] if i["system"] == ATTESTATION]
    searches = [
        ({"identifier": f"{ATTESTATION}|{number}"}, {"identifier": f"{ATTESTATION}|{number}9"}),
        ({"request": f"Claim/{claim_id}"}, {"request": f"Claim/{secrets.token_hex(16)}"}),
    ]
    other_provider = await client_for("prescriber", nihdi=OTHER_GP)
    other_patient = await client_for("patient", ssin=MARIE)
    for client in (other_provider, other_patient):
        for existing, missing in searches:
            hidden, absent = (
                await client.get(URL, params=existing),
                await client.get(URL, params=missing),
            )
            assert comparable(hidden) == comparable(absent)
            assert absent.status_code == 200
            assert absent.json()["total"] == 0
    jan = await client_for("patient", ssin=JAN)
    for client in (provider, jan):
        for existing, _ in searches:
            assert (await client.get(URL, params=existing)).json()["total"] == 1
