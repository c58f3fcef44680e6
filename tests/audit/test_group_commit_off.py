"""``GATEWAY_AUDIT_GROUP_COMMIT=false``: each request chains its events in its own transaction, as
before group commit (docs/access.md, "The chain"); the log and its verification are the same."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from gateway.settings import Settings
from tests.audit.tampering import verdict
from tests.consents.factories import RX_URL, audit_rows, prescription, reason_of


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"audit_group_commit": False})


async def test_SEC_9_without_group_commit_requests_chain_their_own_events(
    app: FastAPI, author: httpx.AsyncClient, colleague: httpx.AsyncClient, database_url: str
) -> None:
    assert not hasattr(app.state, "audit_writer")
    written = await prescription(author)
    assert (await author.get(f"{RX_URL}/{written['id']}")).status_code == 200
    assert reason_of(await colleague.get(f"{RX_URL}/{written['id']}")) == "no-consent"
    rows = await audit_rows(app)
    assert [(r.action, r.outcome) for r in rows] == [
        ("create", "permit"),
        ("read", "permit"),
        ("read", "deny"),
    ]
    assert verdict(database_url) == (True, None, None)
