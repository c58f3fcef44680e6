"""Exactly one dispense wins, across gateway instances (issue 6; docs/architecture.md 2, 6; domain RX-7).

Two gateway processes (uvicorn, as behind a load balancer) share one database: the PostgreSQL
test database when ``GATEWAY_TEST_DATABASE_URL`` names one, else a SQLite file. For each of 200
prescriptions two pharmacies press "deliver" at the same moment, each through a different
instance. Every race must end with exactly one 201 and one 409 (an OperationOutcome), and the
database must hold exactly one current, completed dispense per prescription, its prescription
``completed``.

Prescriptions are written and tokens obtained through the in-process app (same database, same
keys); both instances run with the same public base URL, so either accepts the tokens.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from gateway.settings import Settings
from gateway.storage.tables import audit_events
from gateway.storage.tables import resource_versions as rv
from tests.consents.factories import RX_URL
from tests.dispenses.factories import MD_URL, dispense
from tests.fhir_profiles.factories import medication_request
from tests.fixtures.access import OTHER_PHARMACY_NIHDI
from tests.fixtures.app import ClientFactory
from tests.fixtures.auth import BASE_URL, PHARMACY_NIHDI, PRESCRIBER_NIHDI
from tests.fixtures.fhir import FHIR_JSON, rid_of
from tests.fixtures.processes import Process, free_port, gateway_env, wait_healthy

pytestmark = pytest.mark.e2e

RACES = 200


def instance_env(settings: Settings) -> dict[str, str]:
    env = gateway_env(
        settings,
        {
            "GATEWAY_CA_DIR": str(settings.ca_dir),
            "GATEWAY_PUBLIC_BASE_URL": BASE_URL,
            "GATEWAY_RATE_LIMIT_PER_MINUTE": "1000000",
            "GATEWAY_LOG_LEVEL": "WARNING",
        },
    )
    if settings.redis_url:
        env["GATEWAY_REDIS_URL"] = settings.redis_url
    return env


@pytest.fixture
def instances(app: FastAPI, settings: Settings, tmp_path: Path) -> Iterator[list[str]]:
    """Two uvicorn processes of the gateway on the test's database (migrated by ``app``)."""
    env = instance_env(settings)
    started: list[Process] = []
    urls: list[str] = []
    try:
        for n in range(2):
            port = free_port()
            argv = [
                sys.executable, "-m", "gateway.cli", "serve", "--host", "127.0.0.1",
                "--port", str(port),
            ]  # fmt: skip
            process = Process(f"gateway-{n}", argv, env, tmp_path / f"gateway-{n}.log")
            process.start()
            started.append(process)
            urls.append(f"http://127.0.0.1:{port}")
        for process, url in zip(started, urls, strict=True):
            wait_healthy(process, url + "/healthz")
        yield urls
    finally:
        for process in started:
            process.stop()


async def test_RX_7_two_instances_two_pharmacies_one_winner(
    app: FastAPI, client_for: ClientFactory, instances: list[str]
) -> None:
    author = await client_for("prescriber", nihdi=PRESCRIBER_NIHDI)
    pharmacies = [
        await client_for("pharmacist", nihdi=PHARMACY_NIHDI),
        await client_for("pharmacist", nihdi=OTHER_PHARMACY_NIHDI),
    ]
    # Each pharmacy talks to its own instance over real HTTP, with its real bearer token.
    remotes = [
        httpx.AsyncClient(base_url=url, headers={"authorization": p.headers["authorization"]})
        for url, p in zip(instances, pharmacies, strict=True)
    ]
    outcomes: Counter[tuple[int, int]] = Counter()
    winners: Counter[int] = Counter()
    prescriptions: list[str] = []
    try:
        for n in range(RACES):
            created = await author.post(RX_URL, json=medication_request(), headers=FHIR_JSON)
            assert created.status_code == 201, created.text
            rx = created.json()
            prescriptions.append(rx["id"])
            # Alternate which instance fires first, so neither is always ahead.
            order = remotes if n % 2 == 0 else remotes[::-1]
            responses = await asyncio.gather(
                *(r.post(MD_URL, json=dispense(rid=rid_of(rx)), headers=FHIR_JSON) for r in order)
            )
            codes = tuple(sorted(r.status_code for r in responses))
            outcomes[codes] += 1
            assert codes == (201, 409), [r.text for r in responses]
            loser = next(r for r in responses if r.status_code == 409)
            assert loser.json()["resourceType"] == "OperationOutcome"
            winner = next(r for r in responses if r.status_code == 201)
            winners[remotes.index(order[responses.index(winner)])] += 1
    finally:
        for remote in remotes:
            await remote.aclose()

    assert outcomes == {(201, 409): RACES}
    # Both instances won some races: the race was real, not serialised by one process.
    assert len(winners) == 2, winners
    async with app.state.sessions() as session:
        per_prescription = (
            await session.execute(
                select(rv.c.based_on, func.count())
                .where(
                    rv.c.resource_type == "MedicationDispense",
                    rv.c.is_current.is_(True),
                    rv.c.status == "completed",
                )
                .group_by(rv.c.based_on)
            )
        ).all()
        completed = await session.scalar(
            select(func.count()).where(
                rv.c.resource_type == "MedicationRequest",
                rv.c.is_current.is_(True),
                rv.c.status == "completed",
                rv.c.logical_id.in_(prescriptions),
            )
        )
        # How each loser lost (both are 409): its compare-and-set found the version gone
        # (concurrent-change: the two requests overlapped in the database), or it read the
        # prescription after the winner committed (state-conflict).
        lost = dict(
            (
                await session.execute(
                    select(audit_events.c.reason, func.count())
                    .where(audit_events.c.outcome == "deny")
                    .group_by(audit_events.c.reason)
                )
            ).all()
        )
    print(f"\nraces: {RACES}, wins per instance: {dict(winners)}, losers: {lost}")
    assert sum(lost.values()) == RACES
    assert sorted(n for _, n in per_prescription) == [1] * RACES
    assert {based_on for based_on, _ in per_prescription} == set(prescriptions)
    assert completed == RACES
