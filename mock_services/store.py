"""Store engines of a mock service: a SQLite file, or one PostgreSQL schema per store.

A mock has no migrations: its tables are created when a store opens (:func:`create_tables`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine


def postgres_engine(database_url: str) -> AsyncEngine:
    """An async (psycopg) engine for ``database_url``; anything but PostgreSQL is a ``ValueError``
    (the CLI's message)."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise ValueError("--database-url must be a PostgreSQL URL; SQLite uses --data-dir")
    return create_async_engine(url.set(drivername="postgresql+psycopg"), pool_pre_ping=True)


def in_schema(engine: AsyncEngine, schema: str) -> AsyncEngine:
    """``engine`` with the tables' default schema mapped to ``schema`` (dispose of ``engine``)."""
    return engine.execution_options(schema_translate_map={None: schema})


def sqlite_engine(path: Path) -> AsyncEngine:
    """An aiosqlite engine on ``path`` in WAL mode, waiting up to 5 s for a lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()

    return engine


async def create_tables(conn: AsyncConnection, metadata: MetaData, schema: str | None) -> None:
    """Create ``schema`` (PostgreSQL) and the tables if missing, in ``conn``'s transaction."""
    if schema is not None:
        # Several processes may open the same schema at once: DDL takes turns.
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:schema))"), {"schema": schema}
        )
        await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    await conn.run_sync(metadata.create_all)
