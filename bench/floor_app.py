"""The floor endpoint: what any correct implementation of the hot path must do, and nothing else.

Same framework and server as the gateway (FastAPI on uvicorn, the gateway's arguments), same
database and drivers (``gateway.db.create_engine``: aiosqlite with BEGIN IMMEDIATE, or psycopg
async), real tables of its own (``floor_versions``, ``floor_audit``; in a schema ``floor`` on
PostgreSQL). Per request:

* create (``POST /fhir/<type>``): parse the JSON once, one AES-GCM encryption of the body, one
  keyed hash (HMAC-SHA256) of the patient's SSIN, one INSERT of the version and one of an audit
  row, commit; answer 201 with the id and RID.
* fetch by RID (``GET /fhir/MedicationRequest?identifier=<RID>``): one indexed SELECT, one
  decryption, one audit INSERT, commit; answer a searchset Bundle around the stored body.
* search by patient (``GET /fhir/MedicationRequest?patient:identifier=<system>|<SSIN>``): one keyed
  hash, one indexed SELECT of the newest page (10), one decryption per row, one audit INSERT.

No validation, no authentication, no access decision, no hash chain: the gap between the gateway
and this endpoint is what those (and everything else) cost. ``python -m bench.floor_app --port P
--database-url URL --key KEY [--workers N]``; ``prepare(url)`` creates its tables first.
"""

from __future__ import annotations

import argparse
import base64
import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    insert,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.ext.asyncio import create_async_engine as sqlalchemy_async_engine

from gateway.db import async_url, is_sqlite, sync_url
from gateway.db import create_engine as gateway_engine
from gateway.storage.crypto import Keyring, associated_data

SCHEMA: Final = "floor"
PAGE: Final = 10
_ENV_URL, _ENV_KEY = "FLOOR_DATABASE_URL", "FLOOR_ENCRYPTION_KEY"

metadata = MetaData(schema=SCHEMA)
versions = Table(
    "floor_versions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("rid", String(40), nullable=False, unique=True),
    Column("patient_hmac", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("key_id", String(16), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Index("ix_floor_versions_patient", "patient_hmac", "created_at"),
)
audit = Table(
    "floor_audit",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("action", String(1), nullable=False),
    Column("resource_id", String(40)),
    Column("patient_hmac", String(64)),
)


def _schema_map(url: str) -> dict[str | None, str | None]:
    """SQLite has no schemas: the same tables live in the main database there."""
    return {SCHEMA: None} if is_sqlite(url) else {SCHEMA: SCHEMA}


def prepare(url: str) -> None:
    """Create the floor's tables (and schema) in the benchmark database, empty."""
    engine = create_engine(sync_url(url)).execution_options(schema_translate_map=_schema_map(url))
    with engine.begin() as conn:
        if not is_sqlite(url):
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{SCHEMA}"'))
        metadata.drop_all(conn)
        metadata.create_all(conn)
    engine.dispose()


def _ssin(document: dict[str, Any]) -> str | None:
    for key in ("subject", "patient"):
        identifier = (document.get(key) or {}).get("identifier") or {}
        if identifier.get("value"):
            return str(identifier["value"])
    return None


def _engine(url: str) -> AsyncEngine:
    """The gateway's engine on SQLite (its pragmas and BEGIN IMMEDIATE are what a correct
    writer needs there); on PostgreSQL the same driver and pool size without the pre-ping, a
    round trip per checkout that correctness does not need."""
    if is_sqlite(url):
        return gateway_engine(url)
    return sqlalchemy_async_engine(async_url(url), pool_size=10, max_overflow=10)


def build_app(url: str, master_key: bytes) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    keyring = Keyring(master_key)
    engine = _engine(url).execution_options(schema_translate_map=_schema_map(url))
    insert_version = insert(versions)
    insert_audit = insert(audit)
    by_rid = select(versions.c.id, versions.c.patient_hmac, versions.c.body).where(
        versions.c.rid == bindparam("rid")
    )
    by_patient = (
        select(versions.c.id, versions.c.body)
        .where(versions.c.patient_hmac == bindparam("patient"))
        .order_by(versions.c.created_at.desc())
        .limit(PAGE)
    )

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @app.post("/fhir/{resource_type}")
    async def create(resource_type: str, request: Request) -> Response:
        raw = await request.body()
        document = orjson.loads(raw)
        ssin = _ssin(document)
        logical_id, rid = str(uuid.uuid4()), uuid.uuid4().hex
        now = datetime.now(UTC)
        patient = keyring.search_hash("ssin", ssin) if ssin else None
        body = keyring.encrypt(raw, associated_data(resource_type, logical_id, 1))
        async with engine.begin() as conn:
            await conn.execute(
                insert_version,
                {
                    "id": logical_id,
                    "rid": rid,
                    "patient_hmac": patient,
                    "created_at": now,
                    "key_id": keyring.key_id,
                    "body": body,
                },
            )
            await conn.execute(
                insert_audit,
                {
                    "recorded_at": now,
                    "action": "C",
                    "resource_id": logical_id,
                    "patient_hmac": patient,
                },
            )
        answer = {"resourceType": resource_type, "id": logical_id, "identifier": [{"value": rid}]}
        return Response(orjson.dumps(answer), status_code=201, media_type="application/fhir+json")

    @app.get("/fhir/MedicationRequest")
    async def read(request: Request) -> Response:
        rid = request.query_params.get("identifier")
        patient = request.query_params.get("patient:identifier")
        now = datetime.now(UTC)
        bodies: list[bytes] = []
        rows: Sequence[Any]
        async with engine.begin() as conn:
            if rid is not None:
                rows = (await conn.execute(by_rid, {"rid": rid.rsplit("|", 1)[-1]})).all()
                hashed = rows[0].patient_hmac if rows else None
            else:
                ssin = (patient or "").rsplit("|", 1)[-1]
                hashed = keyring.search_hash("ssin", ssin)
                rows = (await conn.execute(by_patient, {"patient": hashed})).all()
            for row in rows:
                associated = associated_data("MedicationRequest", row.id, 1)
                bodies.append(keyring.decrypt(row.body, associated))
            await conn.execute(
                insert_audit,
                {"recorded_at": now, "action": "R", "resource_id": None, "patient_hmac": hashed},
            )
        entries = b",".join(
            b'{"resource":' + body + b',"search":{"mode":"match"}}' for body in bodies
        )
        bundle = b'{"resourceType":"Bundle","type":"searchset","total":%d,"entry":[%s]}' % (
            len(bodies),
            entries,
        )
        return Response(bundle, media_type="application/fhir+json")

    return app


def app_from_env() -> FastAPI:
    """The app for ``uvicorn --factory`` (each worker process builds its own engine)."""
    return build_app(os.environ[_ENV_URL], base64.urlsafe_b64decode(os.environ[_ENV_KEY]))


def main(argv: Sequence[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--key", required=True, help="32 bytes, base64url (gateway keys new-...)")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    os.environ[_ENV_URL], os.environ[_ENV_KEY] = args.database_url, args.key
    # The same arguments as gateway.cli._serve, so the two differ only in the application.
    uvicorn.run(
        "bench.floor_app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,
        log_level="warning",
        http="h11",  # as gateway serve (gateway.cli.server_limits)
    )


if __name__ == "__main__":
    main()
