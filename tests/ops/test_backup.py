"""Backup and restore (issue 19, item 5): ``gateway backup`` dumps the database while the API
writes, ``gateway restore`` loads it into an empty database, the audit chain verifies there, and
every resource reads back through the API of a gateway started on the restored database. The
dump holds no key: a restore without the right key material is refused before it starts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.engine import make_url

from fhir_profiles import systems
from gateway.app import create_app
from gateway.cli import main
from gateway.db import sync_url
from gateway.settings import Settings
from gateway.storage.crypto import new_encryption_key
from gateway.storage.tables import resource_versions
from tests.consents.factories import RX_URL, created, informed_consent, prescription
from tests.fhir_profiles.factories import SSIN
from tests.fixtures.app import ClientFactory, patient_token
from tests.fixtures.auth import BASE_URL
from tests.fixtures.database import PG_URL


@pytest.fixture
def empty_database(tmp_path: Path) -> Iterator[str]:
    """A database that does not exist yet (SQLite) or is freshly created (PostgreSQL)."""
    if not PG_URL:
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    name = f"{make_url(PG_URL).database}_restore"
    server = create_engine(sync_url(PG_URL), isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    with server.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    server.dispose()


def rows_of(database_url: str) -> list[tuple[str, str, int]]:
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            rv = resource_versions.c
            query = select(rv.resource_type, rv.logical_id, rv.version_id).order_by(
                rv.resource_type, rv.logical_id, rv.version_id
            )
            return [tuple(row) for row in connection.execute(query)]  # type: ignore[misc]
    finally:
        engine.dispose()


async def cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_a_backup_taken_under_load_restores_and_reads_back(
    app: FastAPI,
    client_for: ClientFactory,
    settings: Settings,
    gateway_env: None,
    empty_database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    prescriber = await client_for("prescriber")
    patient = await client_for("patient", ssin=SSIN)
    await created(patient, informed_consent())
    written = [await prescription(prescriber) for _ in range(5)]
    dump = tmp_path / "backups" / "gateway.dump"

    async def keep_writing() -> None:
        written.extend([await prescription(prescriber) for _ in range(5)])

    code, _ = await asyncio.gather(cli("backup", "--out", str(dump)), keep_writing())
    assert code == 0
    out = capsys.readouterr().out
    assert "the dump holds no key" in out
    manifest = json.loads(dump.with_name("gateway.dump.manifest.json").read_text())
    assert manifest["key_ids"]["resource_versions"] == [app.state.keyring.key_id]
    backed_up = manifest["rows"]["resource_versions"]
    assert 6 <= backed_up <= len(rows_of(settings.database_url))
    assert SSIN not in dump.read_bytes().decode("latin-1")  # bodies and SSINs are sealed

    # The restore, as an operator runs it on a new database with the same keys.
    monkeypatch.setenv("GATEWAY_DATABASE_URL", empty_database)
    assert await cli("restore", str(dump)) == 0
    out = capsys.readouterr().out
    assert f"restored {sum(manifest['rows'].values())} rows" in out
    assert "audit chain intact" in out
    assert await cli("audit", "verify") == 0
    restored = rows_of(empty_database)
    assert len(restored) == backed_up
    assert set(restored) <= set(rows_of(settings.database_url))

    # Every resource of the snapshot reads back through a gateway on the restored database.
    there = create_app(settings.model_copy(update={"database_url": empty_database}))
    try:
        await check_reads(there, restored, {rx["id"]: rx for rx in written})
    finally:
        await there.state.kv.aclose()
        await there.state.engine.dispose()


async def check_reads(
    app: FastAPI, rows: list[tuple[str, str, int]], written: dict[str, dict[str, Any]]
) -> None:
    token = await patient_token(app, SSIN)  # the signing key was restored with its sealed half
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=BASE_URL,
        headers={"accept": "application/fhir+json", "authorization": f"Bearer {token}"},
    ) as patient:
        for resource_type, logical_id, version in rows:
            response = await patient.get(f"/fhir/{resource_type}/{logical_id}/_history/{version}")
            assert response.status_code == 200, response.text
            if resource_type == "MedicationRequest":
                assert response.json() == written[logical_id]
        own = await patient.get(
            RX_URL, params={"patient:identifier": f"{systems.SSIN}|{SSIN}", "_count": "100"}
        )
        assert own.json()["total"] == sum(1 for row in rows if row[0] == "MedicationRequest")
        log = await patient.get("/fhir/AuditEvent", params={"_count": "5"})
        assert log.status_code == 200, log.text
        assert log.json()["total"] > 0


async def test_a_restore_needs_the_keys_and_an_empty_database(
    client_for: ClientFactory,
    settings: Settings,
    gateway_env: None,
    empty_database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await prescription(await client_for("prescriber"))
    dump = tmp_path / "gateway.dump"
    assert await cli("backup", "--out", str(dump)) == 0
    assert await cli("backup", "--out", str(dump)) == 2  # never overwritten
    assert "exists" in capsys.readouterr().err

    monkeypatch.setenv("GATEWAY_DATABASE_URL", empty_database)
    monkeypatch.setenv("GATEWAY_ENCRYPTION_KEY", new_encryption_key())
    assert await cli("restore", str(dump)) == 2
    err = capsys.readouterr().err
    assert "do not include key id" in err
    assert tables_of(empty_database) == []  # nothing was loaded

    assert settings.encryption_key is not None
    monkeypatch.setenv("GATEWAY_ENCRYPTION_KEY", settings.encryption_key.get_secret_value())
    monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.database_url)  # the live one
    assert await cli("restore", str(dump)) == 2
    assert "the target database is not empty" in capsys.readouterr().err


def tables_of(database_url: str) -> list[str]:
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            return list(inspect(connection).get_table_names())
    finally:
        engine.dispose()
