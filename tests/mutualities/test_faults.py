"""Fault injection in process: 503 share, down, drop after commit, seeded draws, per fund."""

from __future__ import annotations

import random

import httpx
import orjson
import pytest

from mock_services.faults import ConnectionDropped, FaultSettings
from tests.mutualities.conftest import AppFactory, ClientFactory
from tests.mutualities.factories import MARIE, claim, submit


async def set_faults(
    client: httpx.AsyncClient, fund: str = "100", **changes: object
) -> dict[str, object]:
    response = await client.post(f"/funds/{fund}/admin/faults", json=changes)
    assert response.status_code == 200
    snapshot: dict[str, object] = response.json()
    return snapshot


async def test_error_rate_answers_503_before_doing_anything(client: httpx.AsyncClient) -> None:
    await set_faults(client, error_rate=1.0)
    response = await submit(client, claim(), "k")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    outcome = orjson.loads(response.content)
    assert outcome["issue"][0]["code"] == "transient"
    # Admin endpoints are never faulted, and nothing was stored.
    report = (await client.get("/funds/100/admin/received")).json()
    assert report["counts"]["claims"] == 0
    snapshot = await set_faults(client, error_rate=0.0)
    assert snapshot["counters"] == {
        "requests": 1,
        "unavailable": 1,
        "dropped_after_commit": 0,
        "down": 0,
    }
    assert (await submit(client, claim(), "k")).status_code == 200


async def test_down_answers_nothing(client: httpx.AsyncClient) -> None:
    await set_faults(client, down=True)
    with pytest.raises(ConnectionDropped):
        await submit(client, claim(), "k")
    with pytest.raises(ConnectionDropped):
        await client.get("/funds/100/settlements")
    assert (await client.get("/healthz")).status_code == 200
    # Faults are per fund.
    assert (
        await submit(client, claim(patient=MARIE, insurer="300"), "k", "300")
    ).status_code == 200
    await set_faults(client, down=False)
    assert (await client.get("/funds/100/admin/received")).json()["counts"]["claims"] == 0


async def test_drop_after_commit_stores_then_answers_nothing(client: httpx.AsyncClient) -> None:
    await set_faults(client, drop_after_commit_rate=1.0)
    with pytest.raises(ConnectionDropped):
        await submit(client, claim(), "k")
    # GETs are never dropped.
    assert (await client.get("/funds/100/settlements")).status_code == 200
    report = (await client.get("/funds/100/admin/received")).json()
    assert report["counts"]["accepted"] == 1
    [attestation] = report["attestations"]
    await set_faults(client, drop_after_commit_rate=0.0)
    retry = await submit(client, claim(), "k")
    assert retry.headers["idempotent-replayed"] == "true"
    assert orjson.loads(retry.content)["identifier"][0]["value"] == attestation["attestation"]
    report = (await client.get("/funds/100/admin/received")).json()
    assert (report["counts"]["accepted"], report["counts"]["deliveries"]) == (1, 2)


async def _pattern(client: httpx.AsyncClient, n: int = 30) -> list[int]:
    return [(await client.get("/funds/100/healthz")).status_code for _ in range(n)]


async def test_the_seed_makes_faults_deterministic(
    make_app: AppFactory, client_for: ClientFactory
) -> None:
    faults = FaultSettings(error_rate=0.5)
    first = await _pattern(await client_for(await make_app(faults=faults, seed=42)))
    second = await _pattern(await client_for(await make_app(faults=faults, seed=42)))
    assert first == second
    assert 0 < first.count(503) < len(first)
    # The draws are reproducible outside the server: two per request from Random("<seed>:<fund>").
    rng = random.Random("42:100")
    expected = []
    for _ in first:
        error, _drop = rng.random(), rng.random()
        expected.append(503 if error < 0.5 else 200)
    assert first == expected


async def test_faults_reject_bad_settings(client: httpx.AsyncClient) -> None:
    response = await client.post("/funds/100/admin/faults", json={"error_rate": 2})
    assert response.status_code == 400
    response = await client.post("/funds/100/admin/faults", json={"eror_rate": 0.1})
    assert response.status_code == 400


async def test_process_wide_admin(client: httpx.AsyncClient) -> None:
    response = await client.post("/admin/faults", json={"latency_ms": 5, "reset_counters": True})
    funds = response.json()["funds"]
    assert sorted(funds) == ["100", "300", "500"]
    assert all(state["latency_ms"] == 5 for state in funds.values())
    await submit(client, claim(), "k")
    received = (await client.get("/admin/received")).json()["funds"]
    assert received["100"]["counts"]["accepted"] == 1
    assert received["300"]["counts"]["claims"] == 0


async def test_at7_the_funds_switch_speaks_of_drops_after_commit(client: httpx.AsyncClient) -> None:
    """The fund's drop is the AT-7 case (committed, unanswered): its switch and counters say so,
    and the register's generic ``drop_rate`` is not a field here."""
    response = await client.post("/funds/100/admin/faults", json={"drop_rate": 1.0})
    assert response.status_code == 400
    assert "drop_rate" in orjson.loads(response.content)["issue"][0]["diagnostics"]
    snapshot = await set_faults(client, drop_after_commit_rate=0.5)
    assert snapshot == {
        "fund": "100",
        "latency_ms": 0,
        "error_rate": 0.0,
        "drop_after_commit_rate": 0.5,
        "down": False,
        "counters": {"requests": 0, "unavailable": 0, "dropped_after_commit": 0, "down": 0},
    }
