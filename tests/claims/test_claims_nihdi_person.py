"""Attestations by NIHDI numbers as NIHDI issues them (domain ID-7, AT-3, CO-9).

Physicians registered since 1 April 2019 carry modulo-89 check digits; a provider's claims are his
by person (first eight digits), whatever competence code he calls under now.
"""

from __future__ import annotations

from fastapi import FastAPI

from tests.claims.conftest import post_claim
from tests.claims.factories import claim
from tests.fixtures.app import ClientFactory
from tests.fixtures.nihdi import nihdi

GP = nihdi("198765", "004", series=89)
SPECIALIST = nihdi("198765", "580", series=89)
NAMESAKE = nihdi("198765", "004")  # same first six digits, modulo-97 series: another person


async def test_ID_7_a_provider_reads_and_lists_his_claims_under_a_new_competence_code(
    client_for: ClientFactory, app: FastAPI
) -> None:
    as_gp = await client_for("prescriber", nihdi=GP)
    sent = await post_claim(as_gp, claim(provider=GP))
    assert sent.status_code == 202, sent.text
    claim_id = sent.json()["id"]

    as_specialist = await client_for("prescriber", nihdi=SPECIALIST)
    assert (await as_specialist.get(f"/fhir/Claim/{claim_id}")).status_code == 200
    listed = await as_specialist.get("/fhir/Claim")
    assert listed.status_code == 200, listed.text
    assert [e["resource"]["id"] for e in listed.json()["entry"]] == [claim_id]

    namesake = await client_for("prescriber", nihdi=NAMESAKE)
    assert (await namesake.get(f"/fhir/Claim/{claim_id}")).status_code == 403
    assert (await namesake.get("/fhir/Claim")).json()["total"] == 0
