"""``gateway claims list --failed`` and ``gateway claims retry``: what operators see and do."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator

import httpx
import pytest
import respx
from fastapi import FastAPI

from gateway.cli import main
from tests.claims.conftest import FUND_URLS, Worker, claim_row, job_rows, post_claim, state_of
from tests.claims.factories import MARIE, claim


@pytest.fixture
def funds_env(gateway_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator's commands, with the mock funds' addresses."""
    monkeypatch.setenv("GATEWAY_MUTUALITY_URLS", ",".join(f"{c}={u}" for c, u in FUND_URLS.items()))


@pytest.fixture
def failing_funds() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        mock.post(FUND_URLS["100"] + "/$process-message").mock(return_value=httpx.Response(400))
        yield mock


async def test_failed_deliveries_are_listed_and_retried(
    provider: httpx.AsyncClient,
    make_worker: Callable[..., Worker],
    failing_funds: respx.MockRouter,
    app: FastAPI,
    funds_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    failed_id = (await post_claim(provider, claim(), key="a")).json()["id"]
    waiting_id = (await post_claim(provider, claim(patient=MARIE, insurer="300"), key="b")).json()[
        "id"
    ]
    # Fund 100 answers 400 (a bug: no retry helps); fund 300 is not configured at all.
    await make_worker(mutuality_urls={"100": FUND_URLS["100"]}).deliver()
    assert (await claim_row(app, failed_id)).state == "failed"

    capsys.readouterr()
    assert await asyncio.to_thread(main, ["claims", "list", "--failed", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted((r["claim_id"], r["state"], r["last_error"]) for r in rows) == sorted(
        [
            (failed_id, "failed", "FUND_REFUSED_REQUEST: HTTP 400"),
            (waiting_id, "failed", "NO_ROUTE: no URL configured for fund 300"),
        ]
    )
    assert await asyncio.to_thread(main, ["claims", "list"]) == 0
    table = capsys.readouterr().out
    assert failed_id in table
    assert "FUND_REFUSED_REQUEST" in table

    assert await asyncio.to_thread(main, ["claims", "retry", failed_id]) == 0
    assert "requeued" in capsys.readouterr().out
    [job] = await job_rows(app, failed_id)
    assert (job.state, job.attempts, job.finished_at) == ("pending", 0, None)
    assert (await claim_row(app, failed_id)).state == "queued"
    assert state_of((await provider.get(f"/fhir/Claim/{failed_id}")).json()) == "queued"

    assert await asyncio.to_thread(main, ["claims", "retry", failed_id]) == 2  # not failed now
    assert await asyncio.to_thread(main, ["claims", "retry", "nothing-like-it"]) == 2
