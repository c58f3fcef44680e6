"""Proofs of presence checked with the national register (CO-2, RX-18 b; docs/access.md,
"Presence proofs"): the register runs as a real process (``python -m national_register``) and
the gateway asks it over HTTP. The card read must be the patient's current card; anything else is
a 403 ``presence-not-proven`` in the audit trail, a register that does not answer refuses the
proof too (``presence-check-unavailable``), and a card number with wrong check digits is a 4xx
before the register is asked."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fhir_profiles import systems
from gateway.settings import Settings
from tests.consents.factories import (
    OTHER_SSIN,
    RX_URL,
    SSIN,
    URL,
    eid,
    eid_headers,
    informed_consent,
    last_audit,
    patient_hash,
    post,
    reason_of,
    relationship,
)
from tests.fixtures.app import ClientFactory
from tests.fixtures.auth import PHARMACY_NIHDI
from tests.fixtures.eid import card_number
from tests.fixtures.fhir import FHIR_JSON
from tests.fixtures.processes import start_national_register

pytestmark = pytest.mark.e2e

CURRENT_CARD = card_number("6300000001")  # the patient's card today
REPLACED_CARD = card_number("6300000002")  # the patient's previous card, lost and replaced
OTHERS_CARD = card_number("6300000003")  # another person's current card
UNKNOWN_CARD = card_number("6300000004")  # never issued
EXPIRED_SSIN, EXPIRED_CARD = "93051822361", card_number("6300000005")  # current, but past its end
BY_PATIENT = {"patient:identifier": f"{systems.SSIN}|{SSIN}", "status": "active"}
HEALTHY = {"error_rate": 0.0, "drop_rate": 0.0, "latency_ms": 0, "down": False}


@pytest.fixture(scope="module")
def register(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The register's base URL; it knows the cards above."""
    process, base = start_national_register(tmp_path_factory.mktemp("presence"))
    try:
        for ssin, card, until in (
            (SSIN, REPLACED_CARD, None),
            (SSIN, CURRENT_CARD, None),  # replaces the one before
            (OTHER_SSIN, OTHERS_CARD, None),
            (EXPIRED_SSIN, EXPIRED_CARD, "2024-12-31"),
        ):
            body = {"ssin": ssin, "card_number": card, "valid_from": "2020-01-01"}
            response = httpx.post(f"{base}/admin/cards", json={**body, "valid_until": until})
            assert response.status_code == 201, response.text
        yield base
    finally:
        process.stop()


@pytest.fixture
def settings(settings: Settings, register: str) -> Settings:
    return settings.model_copy(
        update={"national_register_url": register, "national_register_timeout_seconds": 1.0}
    )


@pytest.fixture
async def app(app: FastAPI) -> AsyncIterator[FastAPI]:
    yield app
    await app.state.national_register.aclose()  # the lifespan's job, which tests do not run


@pytest.fixture(autouse=True)
def healthy(register: str) -> None:
    set_faults(register, HEALTHY)


def set_faults(register: str, faults: dict[str, Any]) -> None:
    httpx.post(f"{register}/admin/faults", json=faults).raise_for_status()


def questions_asked(register: str) -> int:
    count: int = httpx.get(f"{register}/admin/faults").json()["counters"]["requests"]
    return count


def with_card(body: dict[str, Any], card: str) -> dict[str, Any]:
    return {**body, "verification": eid(card=card)}


def pharmacy_relationship(card: str, ssin: str = SSIN) -> dict[str, Any]:
    return with_card(relationship(PHARMACY_NIHDI, ssin, pharmacy=True, proof=False), card)


async def test_co2_the_patients_current_card_proves_presence(
    pharmacy: httpx.AsyncClient, author: httpx.AsyncClient, register: str
) -> None:
    before = questions_asked(register)
    registered = await post(pharmacy, pharmacy_relationship(CURRENT_CARD))
    assert registered.status_code == 201, registered.text
    consent = await post(author, with_card(informed_consent(proof=False), CURRENT_CARD))
    assert consent.status_code == 201, consent.text
    assert questions_asked(register) == before + 2  # the register was asked, each time


@pytest.mark.parametrize(
    ("ssin", "card"),
    [
        pytest.param(SSIN, OTHERS_CARD, id="another-persons-card"),
        pytest.param(SSIN, REPLACED_CARD, id="replaced-card"),
        pytest.param(SSIN, UNKNOWN_CARD, id="unknown-card"),
        pytest.param(EXPIRED_SSIN, EXPIRED_CARD, id="expired-card"),
    ],
)
async def test_co2_a_card_that_is_not_the_patients_current_one_proves_nothing(
    app: FastAPI,
    pharmacy: httpx.AsyncClient,
    client_for: ClientFactory,
    ssin: str,
    card: str,
) -> None:
    response = await post(pharmacy, pharmacy_relationship(card, ssin))
    assert reason_of(response) == "presence-not-proven"
    assert card not in response.text
    audit = await last_audit(app)
    assert (audit.action, audit.outcome, audit.reason) == ("create", "deny", "presence-not-proven")
    assert audit.patient_hmac == patient_hash(app, ssin)
    # Nothing was registered: the patient's own list is empty.
    patient = await client_for("patient", ssin=ssin)
    listed = await patient.get(URL, params={"category": "therapeutic-relationship"})
    assert listed.status_code == 200, listed.text
    assert listed.json()["total"] == 0


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"error_rate": 1.0}, id="answers-503"),
        pytest.param({"down": True}, id="closes-the-connection"),
        pytest.param({"latency_ms": 3000}, id="slower-than-the-timeout"),
    ],
)
async def test_co2_a_register_that_does_not_answer_refuses_the_proof(
    app: FastAPI, pharmacy: httpx.AsyncClient, register: str, fault: dict[str, Any]
) -> None:
    set_faults(register, fault)
    response = await post(pharmacy, pharmacy_relationship(CURRENT_CARD))
    assert reason_of(response) == "presence-check-unavailable"
    audit = await last_audit(app)
    assert (audit.outcome, audit.reason) == ("error", "presence-check-unavailable")


async def test_co2_a_stopped_register_refuses_the_proof(
    app: FastAPI, pharmacy: httpx.AsyncClient, tmp_path: Any
) -> None:
    process, base = start_national_register(tmp_path)
    process.stop()
    app.state.national_register.url = f"{base}/checks"
    response = await post(pharmacy, pharmacy_relationship(CURRENT_CARD))
    assert reason_of(response) == "presence-check-unavailable"


async def test_co2_wrong_check_digits_are_422_and_the_register_is_not_asked(
    pharmacy: httpx.AsyncClient, register: str
) -> None:
    mistyped = CURRENT_CARD[:10] + f"{(int(CURRENT_CARD[10:]) + 1) % 100:02d}"
    before = questions_asked(register)
    response = await post(pharmacy, pharmacy_relationship(mistyped))
    assert response.status_code == 422
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["Consent.verification[0].verifiedWith.identifier.value"]
    assert mistyped not in response.text
    assert questions_asked(register) == before


async def test_rx18_a_pharmacy_lists_with_the_patients_card_and_not_with_anothers(
    app: FastAPI, pharmacy: httpx.AsyncClient
) -> None:
    listed = await pharmacy.get(RX_URL, params=BY_PATIENT, headers=eid_headers(card=CURRENT_CARD))
    assert listed.status_code == 200, listed.text
    refused = await pharmacy.get(RX_URL, params=BY_PATIENT, headers=eid_headers(card=OTHERS_CARD))
    assert reason_of(refused) == "presence-not-proven"
    audit = await last_audit(app)
    assert (audit.action, audit.outcome, audit.reason) == ("search", "deny", "presence-not-proven")


async def test_rx18_wrong_check_digits_in_the_headers_are_400_and_the_register_is_not_asked(
    pharmacy: httpx.AsyncClient, register: str
) -> None:
    before = questions_asked(register)
    response = await pharmacy.get(
        RX_URL, params=BY_PATIENT, headers=eid_headers(card="6300000001" + "00")
    )
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["X-eID-Card-Number"]
    assert questions_asked(register) == before


async def test_co2_ending_a_relationship_with_anothers_card_is_refused(
    pharmacy: httpx.AsyncClient,
) -> None:
    made = await post(pharmacy, pharmacy_relationship(CURRENT_CARD))
    assert made.status_code == 201, made.text
    body = {k: v for k, v in made.json().items() if k != "verification"}
    ended = await pharmacy.put(
        f"{URL}/{body['id']}",
        json={**body, "status": "inactive"},
        headers={**FHIR_JSON, **eid_headers(card=OTHERS_CARD)},
    )
    assert reason_of(ended) == "presence-not-proven"
