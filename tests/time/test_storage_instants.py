"""The column type under every instant (``gateway.storage.types.UtcDateTime``), on the database the
suite runs on: an aware value comes back as the same instant in UTC, whatever its offset; a naive
value is a programming error and never reaches the database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.exc import StatementError

from gateway.db import sync_url
from gateway.storage.tables import resource_versions
from gateway.storage.types import NaiveDatetimeError
from tests.time.moments import FIRST_AUTUMN_HALF_PAST_TWO, OFFSETS, zone

ROW = {
    "resource_type": "Probe",
    "version_id": 1,
    "is_current": True,
    "deleted": False,
    "key_id": "k",
    "body": b"",
}


@pytest.mark.parametrize("offset", OFFSETS)
def test_an_instant_is_stored_and_compared_as_utc(database_url: str, offset: str) -> None:
    moment = FIRST_AUTUMN_HALF_PAST_TWO.astimezone(zone(offset))
    engine = create_engine(sync_url(database_url))
    with engine.begin() as conn:
        conn.execute(
            resource_versions.insert(),
            {**ROW, "logical_id": "a", "last_updated": moment, "created_at": moment},
        )
        found = conn.execute(
            select(resource_versions.c.created_at).where(
                resource_versions.c.created_at == FIRST_AUTUMN_HALF_PAST_TWO
            )
        ).scalar_one()
    engine.dispose()
    assert found == FIRST_AUTUMN_HALF_PAST_TWO
    assert found.tzinfo is UTC


def test_a_naive_datetime_never_reaches_the_database(database_url: str) -> None:
    engine = create_engine(sync_url(database_url))
    naive = datetime(2026, 10, 25, 2, 30)
    with engine.begin() as conn, pytest.raises(StatementError) as raised:
        conn.execute(
            resource_versions.insert(),
            {**ROW, "logical_id": "b", "last_updated": naive, "created_at": naive},
        )
    assert isinstance(raised.value.orig, NaiveDatetimeError)
    with engine.connect() as conn:
        assert conn.execute(select(resource_versions)).all() == []
    engine.dispose()
