"""Without a national register (the embedded default) a proof of presence is checked for its card
number's check digits only (CO-2, RX-18 b; docs/access.md, "Presence proofs"): a mistyped number
is refused with the element or header at fault, never repeating the value."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from fhir_profiles import systems
from tests.consents.factories import (
    RX_URL,
    SSIN,
    eid,
    eid_headers,
    informed_consent,
    post,
)
from tests.fixtures.eid import card_number

MISTYPED = "592123456789"  # the check digits of 5921234567 are 32
BY_PATIENT = {"patient:identifier": f"{systems.SSIN}|{SSIN}", "status": "active"}


async def test_co2_without_a_register_a_card_with_its_check_digits_is_a_proof(
    app: FastAPI, author: httpx.AsyncClient
) -> None:
    assert app.state.national_register is None
    body = informed_consent(verification=eid(card=card_number("7000000001")))
    assert (await post(author, body)).status_code == 201


async def test_co2_a_mistyped_card_number_in_verification_is_422(
    author: httpx.AsyncClient,
) -> None:
    response = await post(author, informed_consent(verification=eid(card=MISTYPED)))
    assert response.status_code == 422
    [issue] = response.json()["issue"]
    assert issue["expression"] == ["Consent.verification[0].verifiedWith.identifier.value"]
    assert "modulo-97" in issue["diagnostics"]
    assert MISTYPED not in response.text


async def test_rx18_a_mistyped_card_number_in_the_headers_is_400(
    pharmacy: httpx.AsyncClient,
) -> None:
    response = await pharmacy.get(RX_URL, params=BY_PATIENT, headers=eid_headers(card=MISTYPED))
    assert response.status_code == 400
    [issue] = response.json()["issue"]
    assert issue["expression"] == ["X-eID-Card-Number"]
    assert MISTYPED not in response.text


async def test_rx18_an_eid_read_needs_both_headers(pharmacy: httpx.AsyncClient) -> None:
    card_only = {"x-eid-card-number": card_number("7000000001")}
    response = await pharmacy.get(RX_URL, params=BY_PATIENT, headers=card_only)
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["X-eID-Read-At"]
