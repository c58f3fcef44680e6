"""The embedded default: the forwarder runs inside the API process and wakes on intake."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx
from fastapi import FastAPI

from gateway.settings import Settings
from tests.claims.conftest import FUND_URLS, job_rows, post_claim, response_for
from tests.claims.factories import claim
from tests.claims.test_forwarder import ack, feed, message
from tests.fixtures.clock import Clock


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # A long poll interval: only the nudge after the commit can explain a quick delivery.
    return settings.model_copy(
        update={
            "worker_in_process": True,
            "worker_poll_seconds": 30.0,
            "settlement_poll_seconds": 30.0,
        }
    )


@pytest.fixture
def funds_mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        mock.post(FUND_URLS["100"] + "/$process-message").mock(
            side_effect=lambda request: httpx.Response(
                200, json=message(ack(request.headers["idempotency-key"]))
            )
        )
        for url in FUND_URLS.values():
            mock.get(url + "/settlements").mock(return_value=feed([], 0, 0))
        yield mock


async def answered(provider: httpx.AsyncClient, claim_id: str) -> list[dict[str, Any]]:
    """The claim's responses once the background worker has written one (polled for up to 5 s):
    the worker runs as a real task, so there is no clock to move instead."""
    for _ in range(100):
        if found := await response_for(provider, claim_id):
            return found
        await asyncio.sleep(0.05)
    return await response_for(provider, claim_id)


async def test_intake_wakes_the_in_process_worker(
    app: FastAPI, provider: httpx.AsyncClient, funds_mock: respx.MockRouter
) -> None:
    assert app.state.claim_worker is None
    async with app.router.lifespan_context(app):
        assert app.state.claim_worker is not None
        await asyncio.sleep(0.2)  # the worker's first, empty round
        claim_id = (await post_claim(provider, claim())).json()["id"]
        [answer] = await answered(provider, claim_id)
        assert answer["outcome"] == "complete"
    assert app.state.claim_worker is None


async def test_intake_and_the_in_process_worker_read_the_app_clock(
    app: FastAPI, provider: httpx.AsyncClient, funds_mock: respx.MockRouter
) -> None:
    # The app's "now" is six hours ahead of the system's: the claim is queued at that time, and
    # only a worker reading the same clock finds it due (with the system clock it would wait).
    ahead = datetime.now(UTC) + timedelta(hours=6)
    app.state.clock = Clock(ahead)
    async with app.router.lifespan_context(app):
        claim_id = (await post_claim(provider, claim())).json()["id"]
        [answer] = await answered(provider, claim_id)
        assert answer["outcome"] == "complete"
    [job] = await job_rows(app, claim_id)
    assert (job.created_at, job.finished_at) == (ahead, ahead)


def test_in_process_by_default_on_sqlite_only() -> None:
    key = "A" * 43 + "="
    sqlite = Settings(database_url="sqlite:///x.db", encryption_key=key)
    postgres = Settings(database_url="postgresql+psycopg://u@h/db", encryption_key=key)
    assert sqlite.worker_runs_in_process()
    assert not postgres.worker_runs_in_process()
    assert Settings(
        database_url="postgresql+psycopg://u@h/db", encryption_key=key, worker_in_process=True
    ).worker_runs_in_process()


def test_fund_urls_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "GATEWAY_MUTUALITY_URLS", "100=http://f:9100/funds/100/, 300 = http://f:9100/funds/300"
    )
    assert Settings().mutuality_urls == {
        "100": "http://f:9100/funds/100",
        "300": "http://f:9100/funds/300",
    }
    monkeypatch.setenv("GATEWAY_MUTUALITY_URLS", "100")
    with pytest.raises(ValueError, match="code=url"):
        Settings()
    monkeypatch.setenv("GATEWAY_MUTUALITY_URLS", "1000=http://x")
    with pytest.raises(ValueError, match="3-digit"):
        Settings()
    monkeypatch.setenv("GATEWAY_MUTUALITY_URLS", "")
    monkeypatch.setenv("GATEWAY_CLAIM_LEASE_SECONDS", "5")
    with pytest.raises(ValueError, match="LEASE"):
        Settings()
