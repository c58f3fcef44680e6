"""The Alembic migrations run down and up again on a real database (SQLite here; the PostgreSQL run
of the suite migrates its database at session start), and 0007 repairs what SQLite stored before
instants were UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, select, text

from gateway.cli import new_encryption_key
from gateway.migrate import alembic_config, downgrade, upgrade
from gateway.settings import decode_key
from gateway.storage.crypto import Keyring, associated_data
from gateway.storage.tables import resource_versions


def test_migrations_upgrade_downgrade_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    engine = create_engine(url)
    assert {"resource_versions", "resource_identifiers"} <= set(inspect(engine).get_table_names())
    downgrade(url, "base")
    assert "resource_versions" not in inspect(engine).get_table_names()
    upgrade(url)
    assert "resource_versions" in inspect(engine).get_table_names()
    engine.dispose()


# -- 0007: instants derived from bodies, recomputed as UTC ---------------------------------------

# Bodies as the gateway stored them before 0007, with the values the old SQLite code wrote beside
# them: each aware datetime's wall-clock time in its own offset (Brussels for validity bounds),
# its zone dropped, and read back as UTC.
_PRESCRIPTION = {
    "resourceType": "MedicationRequest",
    "status": "active",
    "authoredOn": "2026-12-02T16:41:40+01:00",
    "dispenseRequest": {"validityPeriod": {"start": "2026-12-02", "end": "2027-03-01"}},
}
_CONSENT = {
    "resourceType": "Consent",
    "status": "active",
    "dateTime": "2026-12-02T11:41:40-05:00",
}
_RELATIONSHIP = {
    "resourceType": "Consent",
    "status": "active",
    "dateTime": "2026-10-25T02:30:00+02:00",
    "provision": {
        "period": {"start": "2026-10-25T14:30:00+14:00", "end": "2027-01-25T02:30:00+01:00"}
    },
}
_DISPENSE = {
    "resourceType": "MedicationDispense",
    "status": "completed",
    "whenHandedOver": "2026-03-29T03:30:00+02:00",
}
_CLAIM = {"resourceType": "Claim", "status": "active", "created": "2026-12-02"}

# (type, id, version, body, the old columns as SQLite text, the right instants after 0007)
_OLD_ROWS: list[tuple[str, str, int, dict[str, Any], dict[str, str | None], dict[str, datetime]]]
_OLD_ROWS = [
    (
        "MedicationRequest",
        "rx",
        1,
        _PRESCRIPTION,
        {
            "authored_on": "2026-12-02 16:41:40.000000",
            "period_start": "2026-12-02 00:00:00.000000",
            "period_end": "2027-03-02 00:00:00.000000",
        },
        {
            "authored_on": datetime(2026, 12, 2, 15, 41, 40, tzinfo=UTC),
            "period_start": datetime(2026, 12, 1, 23, 0, tzinfo=UTC),  # Brussels midnight
            "period_end": datetime(2027, 3, 1, 23, 0, tzinfo=UTC),  # after the last valid day
        },
    ),
    (
        "MedicationRequest",
        "rx",
        2,  # a later version: its columns were copied from version 1
        {**_PRESCRIPTION, "status": "completed"},
        {
            "authored_on": "2026-12-02 16:41:40.000000",
            "period_start": "2026-12-02 00:00:00.000000",
            "period_end": "2027-03-02 00:00:00.000000",
        },
        {
            "authored_on": datetime(2026, 12, 2, 15, 41, 40, tzinfo=UTC),
            "period_end": datetime(2027, 3, 1, 23, 0, tzinfo=UTC),
        },
    ),
    (
        "Consent",
        "consent",
        1,
        _CONSENT,
        {"period_start": "2026-12-02 11:41:40.000000", "period_end": None},
        {"period_start": datetime(2026, 12, 2, 16, 41, 40, tzinfo=UTC)},
    ),
    (
        "Consent",
        "relationship",
        1,
        _RELATIONSHIP,
        {
            "period_start": "2026-10-25 14:30:00.000000",
            "period_end": "2027-01-25 02:30:00.000000",
        },
        {
            "period_start": datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
            "period_end": datetime(2027, 1, 25, 1, 30, tzinfo=UTC),
        },
    ),
    (
        "MedicationDispense",
        "dispense",
        1,
        _DISPENSE,
        {"authored_on": "2026-03-29 03:30:00.000000"},
        {"authored_on": datetime(2026, 3, 29, 1, 30, tzinfo=UTC)},
    ),
]


def _write_old_rows(url: str, keyring: Keyring) -> None:
    """Rows as the code before 0007 left them on SQLite (the raw text it wrote)."""
    engine = create_engine(url)
    rows = [*_OLD_ROWS, ("Claim", "claim", 1, _CLAIM, {"authored_on": None}, {})]
    with engine.begin() as conn:
        for resource_type, logical_id, version, body, old, _ in rows:
            blob = keyring.encrypt(
                orjson.dumps(body), associated_data(resource_type, logical_id, version)
            )
            columns = {"authored_on": None, "period_start": None, "period_end": None, **old}
            conn.execute(
                text(
                    "INSERT INTO resource_versions (resource_type, logical_id, version_id,"
                    " is_current, deleted, last_updated, created_at, key_id, body, authored_on,"
                    " period_start, period_end) VALUES (:type, :id, :version, :current, 0,"
                    " '2026-12-02 15:41:41.000000', '2026-12-02 15:41:41.000000', :key_id, :body,"
                    " :authored_on, :period_start, :period_end)"
                ),
                {
                    "type": resource_type,
                    "id": logical_id,
                    "version": version,
                    "current": version == 2 or logical_id != "rx",
                    "key_id": keyring.key_id,
                    "body": blob,
                    **columns,
                },
            )
    engine.dispose()


def _columns(url: str) -> dict[tuple[str, int], dict[str, datetime | None]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        # Named columns: the table of today has columns later migrations add (0010).
        rv = resource_versions.c
        columns = (rv.logical_id, rv.version_id, rv.authored_on, rv.period_start, rv.period_end)
        rows = conn.execute(select(*columns)).all()
    engine.dispose()
    return {
        (row.logical_id, row.version_id): {
            "authored_on": row.authored_on,
            "period_start": row.period_start,
            "period_end": row.period_end,
        }
        for row in rows
    }


def _revision(url: str) -> str | None:
    engine = create_engine(url)
    with engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    return version


@pytest.mark.parametrize("key_from", ["argument", "environment"])
def test_0007_recomputes_instants_the_old_sqlite_code_stored_as_wall_clock_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key_from: str
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    key = new_encryption_key()
    keyring = Keyring(decode_key(key))
    upgrade(url, "0006")
    _write_old_rows(url, keyring)

    if key_from == "argument":
        monkeypatch.delenv("GATEWAY_ENCRYPTION_KEY", raising=False)
        upgrade(url, keyring=keyring)
    else:
        monkeypatch.setenv("GATEWAY_ENCRYPTION_KEY", key)
        upgrade(url)

    found = _columns(url)
    for _, logical_id, version, _, _, right in _OLD_ROWS:
        for column, instant in right.items():
            assert found[(logical_id, version)][column] == instant, (logical_id, column)
    assert found[("consent", 1)]["period_end"] is None  # no end in the body: none in the column
    assert found[("claim", 1)] == {"authored_on": None, "period_start": None, "period_end": None}


def test_0007_without_rows_needs_no_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GATEWAY_ENCRYPTION_KEY", raising=False)
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    upgrade(url)  # 0007 and every later migration
    assert _revision(url) == ScriptDirectory.from_config(alembic_config(url)).get_current_head()


@pytest.mark.parametrize("key", ["none", "another"])
def test_0007_with_rows_and_no_usable_key_stops_with_a_clear_message_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    monkeypatch.delenv("GATEWAY_ENCRYPTION_KEY", raising=False)
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0006")
    _write_old_rows(url, Keyring(decode_key(new_encryption_key())))
    before = _columns(url)

    other = Keyring(decode_key(new_encryption_key())) if key == "another" else None
    with pytest.raises(RuntimeError, match="GATEWAY_ENCRYPTION_KEY"):
        upgrade(url, keyring=other)
    assert _revision(url) == "0006"
    assert _columns(url) == before
