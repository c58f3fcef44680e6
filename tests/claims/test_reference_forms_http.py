"""Reference search parameters take every form a client writes (FHIR R4 search.html#reference):
``Claim/{id}``, the bare id, and this server's absolute URL; another server's URL is a 400."""

from __future__ import annotations

import httpx

from tests.claims.conftest import Worker, post_claim
from tests.claims.factories import JAN, claim

URL = "/fhir/ClaimResponse"


async def test_claim_response_by_request_in_every_form(
    provider: httpx.AsyncClient, worker: Worker
) -> None:
    claim_id = (await post_claim(provider, claim(patient=JAN))).json()["id"]
    await worker.deliver()
    found = set()
    for form in (f"Claim/{claim_id}", claim_id, f"http://gateway.test/fhir/Claim/{claim_id}"):
        answer = await provider.get(URL, params={"request": form})
        assert answer.status_code == 200, (form, answer.text)
        assert answer.json()["total"] == 1, form
        found.add(answer.json()["entry"][0]["resource"]["id"])
    assert len(found) == 1
    for foreign in (
        f"http://elsewhere.example/fhir/Claim/{claim_id}",
        f"MedicationRequest/{claim_id}",
        f"Claim/{claim_id}/_history/1",
    ):
        refused = await provider.get(URL, params={"request": foreign})
        assert refused.status_code == 400, foreign
        assert refused.json()["issue"][0]["expression"] == ["request"]
