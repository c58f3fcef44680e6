"""Migration 0008: patient accounts keep their passwords and lose the lockout counters (the login
throttle is per account and address in the key-value store, gateway/auth/throttle.py). SQLite here,
where dropping a column rebuilds the table; the PostgreSQL run of the suite migrates its database
at session start."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, inspect, text

from gateway.migrate import downgrade, upgrade

_ROW = {
    "ssin_hmac": "a" * 64,
    "password_hash": "scrypt$16384$8$1$c2FsdA$aGFzaA",
    "now": datetime(2026, 12, 1, 9, 0, tzinfo=UTC).isoformat(),
}


def _columns(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return {c["name"] for c in inspect(engine).get_columns("patient_accounts")}
    finally:
        engine.dispose()


def test_0008_drops_the_lockout_columns_and_keeps_every_account(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'accounts.db'}"
    upgrade(url, "0007")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO patient_accounts (ssin_hmac, password_hash, failed_attempts,"
                " locked_until, created_at, updated_at)"
                " VALUES (:ssin_hmac, :password_hash, 4, :now, :now, :now)"
            ),
            _ROW,
        )
    upgrade(url)
    assert {"failed_attempts", "locked_until"}.isdisjoint(_columns(url))
    with engine.connect() as connection:
        kept = connection.execute(text("SELECT ssin_hmac, password_hash FROM patient_accounts"))
        assert kept.all() == [(_ROW["ssin_hmac"], _ROW["password_hash"])]

    downgrade(url, "0007")  # the counters come back empty: nobody is locked
    assert {"failed_attempts", "locked_until"} <= _columns(url)
    with engine.connect() as connection:
        restored = connection.execute(
            text("SELECT password_hash, failed_attempts, locked_until FROM patient_accounts")
        )
        assert restored.all() == [(_ROW["password_hash"], 0, None)]
    engine.dispose()
