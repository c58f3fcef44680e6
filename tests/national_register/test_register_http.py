"""The mock national register over its HTTP interface (in process, with a controlled clock): the
answer about a card (current, replaced, another person's, unknown, expired), issuing cards, bad
input, and the fault switches. ``test_register_process.py`` runs the real process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from gateway.db import sync_url
from mock_services.faults import ConnectionDropped
from national_register.app import RegisterApp, create_app
from national_register.config import RegisterConfig
from national_register.store import SCHEMA
from tests.fixtures.clock import Clock
from tests.fixtures.database import PG_URL
from tests.fixtures.eid import card_number

NOW = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
# From the built-in seed (national_register/data/persons.json).
JAN, JAN_OLD_CARD, JAN_CARD = "85073003328", "592000000182", "592000000283"
MARIE, MARIE_CARD = "93051822361", "592000000384"
EXPIRED_HOLDER, EXPIRED_CARD = "90010100123", "592000000586"


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
async def app(tmp_path: Path, clock: Clock) -> AsyncIterator[RegisterApp]:
    """On the suite's database: a SQLite file, or the schema ``national_register`` of the
    PostgreSQL test database (dropped first, so the seed starts afresh)."""
    if PG_URL:
        engine = create_engine(sync_url(PG_URL))
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        engine.dispose()
    config = RegisterConfig(data_dir=tmp_path, database_url=PG_URL, seed=1)
    application = create_app(config, clock=clock)
    yield application
    await application.state.store.close()


@pytest.fixture
async def client(app: RegisterApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://register") as client:
        yield client


async def result(client: httpx.AsyncClient, ssin: str, card: str) -> str:
    response = await client.post("/checks", json={"ssin": ssin, "card_number": card})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return str(answer["result"])


async def test_a_persons_current_card_is_valid(client: httpx.AsyncClient) -> None:
    assert await result(client, JAN, JAN_CARD) == "valid"
    assert await result(client, MARIE, MARIE_CARD) == "valid"


async def test_a_card_proves_nothing_for_anyone_but_its_holder(client: httpx.AsyncClient) -> None:
    assert await result(client, MARIE, JAN_CARD) == "not-holder"
    assert await result(client, JAN, card_number("5999999999")) == "unknown-card"


async def test_a_replaced_card_is_no_longer_valid(client: httpx.AsyncClient) -> None:
    assert await result(client, JAN, JAN_OLD_CARD) == "replaced"


async def test_a_card_past_its_last_day_is_expired(client: httpx.AsyncClient, clock: Clock) -> None:
    assert await result(client, EXPIRED_HOLDER, EXPIRED_CARD) == "expired"
    card = card_number("6000000001")
    issued = await client.post(
        "/admin/cards", json={"ssin": MARIE, "card_number": card, "valid_until": "2026-03-14"}
    )
    assert issued.status_code == 201
    assert await result(client, MARIE, card) == "valid"  # its last day, on the Brussels calendar
    clock.now = datetime(2026, 3, 14, 23, 30, tzinfo=UTC)  # 00:30 on the 15th in Brussels
    assert await result(client, MARIE, card) == "expired"


async def test_issuing_a_card_replaces_the_one_the_person_held(client: httpx.AsyncClient) -> None:
    new = card_number("6000000002")
    response = await client.post("/admin/cards", json={"ssin": MARIE, "card_number": new})
    assert response.status_code == 201
    assert response.json() == {"issued": True}
    assert await result(client, MARIE, new) == "valid"
    assert await result(client, MARIE, MARIE_CARD) == "replaced"
    again = await client.post("/admin/cards", json={"ssin": MARIE, "card_number": new})
    assert (again.status_code, again.json()) == (200, {"issued": False})  # the demo re-runs


async def test_a_card_belongs_to_one_person(client: httpx.AsyncClient) -> None:
    response = await client.post("/admin/cards", json={"ssin": MARIE, "card_number": JAN_CARD})
    assert response.status_code == 409
    assert response.json()["error"] == "CARD_TAKEN"
    assert await result(client, JAN, JAN_CARD) == "valid"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ssin": JAN, "card_number": "592000000299"}, "card_number"),  # wrong check digits
        ({"ssin": JAN, "card_number": "59200000028"}, "card_number"),
        ({"ssin": "8507300332", "card_number": JAN_CARD}, "ssin"),
        ({"ssin": JAN}, "card_number"),
        ({"ssin": int(JAN), "card_number": JAN_CARD}, "ssin"),
    ],
)
async def test_malformed_questions_are_400_naming_the_field_not_the_value(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/checks", json=body)
    assert response.status_code == 400
    answer = response.json()
    assert answer["error"] == "INVALID_REQUEST"
    assert field in answer["detail"]
    for value in body.values():
        assert str(value) not in response.text


async def test_faults_answer_checks_but_never_the_switches(client: httpx.AsyncClient) -> None:
    switched = await client.post("/admin/faults", json={"error_rate": 1.0})
    assert switched.json()["error_rate"] == 1.0
    response = await client.post("/checks", json={"ssin": JAN, "card_number": JAN_CARD})
    assert response.status_code == 503
    assert (await client.get("/healthz")).status_code == 200
    faults = (await client.get("/admin/faults")).json()
    assert faults["counters"]["unavailable"] == 1
    await client.post("/admin/faults", json={"error_rate": 0.0})
    assert await result(client, JAN, JAN_CARD) == "valid"


async def test_co2_a_dropped_check_is_closed_unanswered_and_the_switches_keep_their_names(
    client: httpx.AsyncClient,
) -> None:
    """The gateway must treat a check that never answers as unavailable (CO-2): the register's
    drop closes the connection without handling the question; its switch says ``drop_rate``."""
    refused = await client.post("/admin/faults", json={"drop_after_commit_rate": 1.0})
    assert refused.status_code == 400  # the funds' name, not the register's
    switched = await client.post("/admin/faults", json={"drop_rate": 1.0})
    assert switched.json()["drop_rate"] == 1.0
    with pytest.raises(ConnectionDropped):
        await client.post("/checks", json={"ssin": JAN, "card_number": JAN_CARD})
    # The switches and the card desk are never dropped.
    new = card_number("6000000003")
    issued = await client.post("/admin/cards", json={"ssin": MARIE, "card_number": new})
    assert issued.status_code == 201
    faults = (await client.post("/admin/faults", json={"drop_rate": 0.0})).json()
    assert faults["counters"] == {"requests": 1, "unavailable": 0, "dropped": 1, "down": 0}
    assert await result(client, MARIE, new) == "valid"


async def test_issuing_a_malformed_card_is_400_naming_the_field_not_the_value(
    client: httpx.AsyncClient,
) -> None:
    body = {"ssin": MARIE, "card_number": "592000000299"}  # wrong check digits
    response = await client.post("/admin/cards", json=body)
    assert response.status_code == 400
    assert response.json() == {"error": "INVALID_REQUEST", "detail": "invalid: card_number"}
    assert await result(client, MARIE, MARIE_CARD) == "valid"
