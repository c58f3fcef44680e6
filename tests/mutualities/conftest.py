"""Fixtures for the mock funds: an app factory on SQLite (or PostgreSQL), a clock the test moves.

``MUTUALITIES_TEST_DATABASE_URL`` (a PostgreSQL URL) runs the in-process tests on PostgreSQL too,
one schema per fund, dropped before each test.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from mutualities.app import MutualityApp, close_app, create_app
from mutualities.config import FundsConfig
from tests.fixtures.clock import Clock

PG_URL = os.environ.get("MUTUALITIES_TEST_DATABASE_URL")
FUNDS = ("100", "300", "500")


@pytest.fixture
def clock() -> Clock:
    # 10:30 in Brussels on 14 March 2025 (factories.TODAY).
    return Clock(datetime(2025, 3, 14, 9, 30, tzinfo=UTC))


@pytest.fixture(params=["sqlite", "postgresql"] if PG_URL else ["sqlite"])
def backend(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    assert PG_URL is not None
    engine = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        for code in FUNDS:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "mutuality_{code}" CASCADE'))
    engine.dispose()
    return PG_URL


AppFactory = Callable[..., Awaitable[MutualityApp]]


@pytest.fixture
async def make_app(tmp_path: Path, clock: Clock, backend: str | None) -> AsyncIterator[AppFactory]:
    """``await make_app(settle_after=timedelta(0), ...)``: FundsConfig overrides, same store each call."""
    apps: list[MutualityApp] = []

    async def make(**overrides: Any) -> MutualityApp:
        settings: dict[str, Any] = {
            "codes": FUNDS,
            "data_dir": tmp_path / "funds",
            "database_url": backend,
            "settle_after": timedelta(seconds=60),
            "seed": 1,
        }
        settings.update(overrides)
        app = create_app(FundsConfig(**settings), clock=clock)
        await app.state.stores.open()
        apps.append(app)
        return app

    yield make
    for app in apps:
        await close_app(app)


ClientFactory = Callable[[MutualityApp], Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def client_for() -> AsyncIterator[ClientFactory]:
    clients: list[httpx.AsyncClient] = []

    async def make(app: MutualityApp) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://funds.test"
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def app(make_app: AppFactory) -> MutualityApp:
    return await make_app()


@pytest.fixture
async def client(app: MutualityApp, client_for: ClientFactory) -> httpx.AsyncClient:
    return await client_for(app)
