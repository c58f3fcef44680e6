"""The floor endpoint: what any correct implementation of the hot path must do, and nothing else.

Same framework and server as the gateway (FastAPI on uvicorn with h11, the gateway's arguments),
the same database and drivers used directly (psycopg async; aiosqlite with the gateway's SQLite
settings), real tables of its own (``floor_versions``, ``floor_audit``; in a schema ``floor`` on
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
import asyncio
import base64
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Sequence
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
    create_engine,
    text,
)
from sqlalchemy.engine import make_url

from gateway.db import is_sqlite, sync_url
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


class Database:
    """The driver itself, without an ORM or SQL toolkit between: psycopg's async connections in a
    small pool on PostgreSQL; on SQLite one aiosqlite connection per process (as the gateway's
    engine), WAL, and BEGIN IMMEDIATE for every transaction, the same settings the gateway
    needs there (gateway/db.py)."""

    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.url, self.pool_size = url, pool_size
        self.sqlite = is_sqlite(url)
        self.mark = "?" if self.sqlite else "%s"
        self.prefix = "" if self.sqlite else f"{SCHEMA}."
        self._pool: asyncio.Queue[Any] = asyncio.Queue()

    def sql(self, statement: str) -> str:
        return statement.replace("{s}", self.prefix).replace("{p}", self.mark)

    async def open(self) -> None:
        if self.sqlite:
            import aiosqlite

            conn = await aiosqlite.connect(make_url(self.url).database or "", isolation_level=None)
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=10000"):
                await conn.execute(f"PRAGMA {pragma}")
            self._pool.put_nowait(conn)
            return
        import psycopg

        conninfo = make_url(self.url).set(drivername="postgresql").render_as_string(False)
        for _ in range(self.pool_size):
            self._pool.put_nowait(await psycopg.AsyncConnection.connect(conninfo))

    async def close(self) -> None:
        while not self._pool.empty():
            await self._pool.get_nowait().close()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        """A connection in a transaction: committed when the block ends, rolled back if it
        raises."""
        conn = await self._pool.get()
        try:
            if self.sqlite:
                await conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    await conn.execute("ROLLBACK")
                    raise
                await conn.execute("COMMIT")
            else:
                async with conn.transaction():
                    yield conn
        finally:
            self._pool.put_nowait(conn)


def build_app(url: str, master_key: bytes) -> FastAPI:
    keyring = Keyring(master_key)
    db = Database(url)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await db.open()
        yield
        await db.close()

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    insert_version = db.sql(
        "INSERT INTO {s}floor_versions (id, rid, patient_hmac, created_at, key_id, body) "
        "VALUES ({p}, {p}, {p}, {p}, {p}, {p})"
    )
    insert_audit = db.sql(
        "INSERT INTO {s}floor_audit (recorded_at, action, resource_id, patient_hmac) "
        "VALUES ({p}, {p}, {p}, {p})"
    )
    by_rid = db.sql("SELECT id, patient_hmac, body FROM {s}floor_versions WHERE rid = {p}")
    by_patient = db.sql(
        "SELECT id, patient_hmac, body FROM {s}floor_versions WHERE patient_hmac = {p} "
        f"ORDER BY created_at DESC LIMIT {PAGE}"
    )

    def instant() -> Any:
        now = datetime.now(UTC)
        return now.isoformat() if db.sqlite else now

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @app.post("/fhir/{resource_type}")
    async def create(resource_type: str, request: Request) -> Response:
        raw = await request.body()
        document = orjson.loads(raw)
        ssin = _ssin(document)
        logical_id, rid = str(uuid.uuid4()), uuid.uuid4().hex
        now = instant()
        patient = keyring.search_hash("ssin", ssin) if ssin else None
        body = keyring.encrypt(raw, associated_data(resource_type, logical_id, 1))
        async with db.transaction() as conn:
            await conn.execute(
                insert_version, (logical_id, rid, patient, now, keyring.key_id, body)
            )
            await conn.execute(insert_audit, (now, "C", logical_id, patient))
        answer = {"resourceType": resource_type, "id": logical_id, "identifier": [{"value": rid}]}
        return Response(orjson.dumps(answer), status_code=201, media_type="application/fhir+json")

    @app.get("/fhir/MedicationRequest")
    async def read(request: Request) -> Response:
        rid = request.query_params.get("identifier")
        patient = request.query_params.get("patient:identifier")
        bodies: list[bytes] = []
        async with db.transaction() as conn:
            if rid is not None:
                cursor = await conn.execute(by_rid, (rid.rsplit("|", 1)[-1],))
                rows = await cursor.fetchall()
                hashed = rows[0][1] if rows else None
            else:
                hashed = keyring.search_hash("ssin", (patient or "").rsplit("|", 1)[-1])
                cursor = await conn.execute(by_patient, (hashed,))
                rows = await cursor.fetchall()
            for logical_id, _hashed, blob in rows:
                associated = associated_data("MedicationRequest", logical_id, 1)
                bodies.append(keyring.decrypt(bytes(blob), associated))
            await conn.execute(insert_audit, (instant(), "R", None, hashed))
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
