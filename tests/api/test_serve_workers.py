"""``gateway serve`` process count (issue 18): one uvicorn worker per CPU on PostgreSQL unless
``--workers`` says otherwise, and always one on SQLite (one writer, the embedded claim worker)."""

from __future__ import annotations

import os

import pytest

from gateway.cli import serve_workers
from gateway.storage.crypto import new_encryption_key

PG = "postgresql+psycopg://gateway@db.example/gateway"


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("GATEWAY_ENCRYPTION_KEY", new_encryption_key())
    return monkeypatch


def test_postgresql_defaults_to_one_worker_per_cpu(database: pytest.MonkeyPatch) -> None:
    database.setenv("GATEWAY_DATABASE_URL", PG)
    assert serve_workers(None) == (os.cpu_count() or 1)
    assert serve_workers(3) == 3


def test_sqlite_is_served_by_one_process(
    database: pytest.MonkeyPatch, tmp_path: os.PathLike[str]
) -> None:
    database.setenv("GATEWAY_DATABASE_URL", f"sqlite:///{tmp_path}/g.db")
    assert serve_workers(None) == 1
    assert serve_workers(1) == 1
    with pytest.raises(SystemExit, match="one process"):
        serve_workers(2)
