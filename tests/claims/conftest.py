"""Fixtures for the claims tests: settings with two funds, the provider, a forwarder to drive.

Funds are either the real mock funds in process (``funds``: ``mutualities.create_app`` behind
``httpx.ASGITransport``, the gateway still talks HTTP to them) or respx routes (retry edge cases).
The forwarder and the poller run with a clock the test moves (``clock.advance(seconds=30)``), so a
rescheduled delivery falls due without waiting.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from gateway.claims.forwarder import Forwarder
from gateway.claims.funds import FundClient
from gateway.claims.poller import SettlementPoller
from gateway.settings import Settings
from gateway.storage.tables import claim_jobs, claims
from mutualities.app import MutualityApp, close_app
from mutualities.app import create_app as create_funds
from mutualities.config import FundsConfig
from tests.fixtures.app import ClientFactory
from tests.fixtures.auth import PRESCRIBER_NIHDI
from tests.fixtures.clock import Clock

FUND_URLS = {"100": "http://funds.test/funds/100", "300": "http://funds.test/funds/300"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "mutuality_urls": dict(FUND_URLS),
            "worker_in_process": False,
            "claim_max_attempts": 4,
            "claim_backoff_initial_seconds": 1.0,
            "claim_backoff_max_seconds": 60.0,
            "claim_backoff_jitter_seconds": 0.0,
            "claim_send_timeout_seconds": 2.0,
            "claim_lease_seconds": 30.0,
            "settlement_page_size": 50,
        }
    )


@pytest.fixture
async def provider(client_for: ClientFactory) -> httpx.AsyncClient:
    return await client_for("prescriber", nihdi=PRESCRIBER_NIHDI)


@pytest.fixture
def clock() -> Clock:
    """The worker's clock: the real time, moved forward by what the test ``advance``-s. The app's
    own clock stays the real one here (intake stamps claims with the real time)."""
    return Clock()


@pytest.fixture
async def funds(tmp_path: Path) -> AsyncIterator[MutualityApp]:
    """Funds 100 and 300 (the mock's own store in tmp_path), settling at once."""
    app = create_funds(
        FundsConfig(
            codes=("100", "300"),
            data_dir=tmp_path / "funds",
            settle_after=timedelta(0),
            seed=1,
        )
    )
    await app.state.stores.open()
    yield app
    await close_app(app)


@dataclass
class Worker:
    forwarder: Forwarder
    poller: SettlementPoller

    async def deliver(self) -> int:
        """Run the forwarder until nothing due is left (sends finished)."""
        total = 0
        while True:
            claimed = await self.forwarder.tick()
            await self.forwarder.drain()
            total += claimed
            if not claimed:
                return total

    async def settle(self) -> int:
        return await self.poller.poll_all()


@pytest.fixture
async def make_worker(
    app: FastAPI, settings: Settings, clock: Clock
) -> AsyncIterator[Callable[..., Worker]]:
    """``make_worker(transport)``: a forwarder and poller over ``transport`` (ASGI app or respx)."""
    clients: list[httpx.AsyncClient] = []

    def make(transport: httpx.AsyncBaseTransport | None = None, **overrides: Any) -> Worker:
        chosen = settings.model_copy(update=overrides) if overrides else settings
        http = httpx.AsyncClient(transport=transport) if transport else httpx.AsyncClient()
        clients.append(http)
        funds = FundClient(http, chosen.mutuality_urls, chosen.claim_send_timeout_seconds)
        sessions, keyring = app.state.sessions, app.state.keyring
        return Worker(
            Forwarder(sessions, keyring, chosen, funds, clock=clock),
            SettlementPoller(sessions, keyring, chosen, funds, clock=clock),
        )

    yield make
    for http in clients:
        await http.aclose()


@pytest.fixture
def worker(make_worker: Callable[..., Worker], funds: MutualityApp) -> Worker:
    return make_worker(httpx.ASGITransport(app=funds))


async def job_rows(app: FastAPI, claim_id: str | None = None) -> list[Any]:
    async with app.state.sessions() as session:
        query = select(claim_jobs).order_by(claim_jobs.c.created_at)
        if claim_id is not None:
            query = query.where(claim_jobs.c.claim_id == claim_id)
        return list((await session.execute(query)).all())


async def claim_row(app: FastAPI, claim_id: str) -> Any:
    async with app.state.sessions() as session:
        return (await session.execute(select(claims).where(claims.c.claim_id == claim_id))).one()


def state_of(resource: dict[str, Any]) -> str:
    [tag] = [t for t in resource["meta"]["tag"] if t["system"] == "urn:ehealth-gateway:claim-state"]
    code: str = tag["code"]
    return code


async def post_claim(
    client: httpx.AsyncClient, body: dict[str, Any], key: str | None = "key-1", **headers: str
) -> httpx.Response:
    if key is not None:
        headers["Idempotency-Key"] = key
    return await client.post(
        "/fhir/Claim", json=body, headers={"content-type": "application/fhir+json", **headers}
    )


async def response_for(client: httpx.AsyncClient, claim_id: str) -> list[dict[str, Any]]:
    answer = await client.get("/fhir/ClaimResponse", params={"request": f"Claim/{claim_id}"})
    assert answer.status_code == 200, answer.text
    return [entry["resource"] for entry in answer.json().get("entry", [])]
