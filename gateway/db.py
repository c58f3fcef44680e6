"""Database engines and the one place a request's transaction commits.

SQLite (embedded default) and PostgreSQL (production) behind the same SQLAlchemy 2 async API.
Users configure plain URLs (``sqlite:///./var/gateway.db``, ``postgresql+psycopg://...``);
``async_url``/``sync_url`` pick the drivers (aiosqlite, psycopg async; sqlite3, psycopg for Alembic).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import PoolResetState
from sqlalchemy.util import await_


def async_url(url: str) -> URL:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    if parsed.get_backend_name() == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    raise ValueError(f"unsupported database backend: {parsed.get_backend_name()}")


def sync_url(url: str) -> URL:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite")
    return parsed.set(drivername="postgresql+psycopg")


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def ensure_sqlite_dir(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(str(parsed.database)).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers proceed beside the single writer; busy_timeout makes a second process wait
    # for the write lock instead of failing at once.
    # isolation_level=None hands transaction control to the "begin" hook below.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin_immediate(conn: Connection) -> None:
    # Every request may write (at least its audit event), and a deferred transaction that later
    # upgrades to a write lock can fail with SQLITE_BUSY without waiting. BEGIN IMMEDIATE takes the
    # write lock up front, so concurrent writers queue on busy_timeout instead.
    # Sent to aiosqlite itself: one trip to its thread, where exec_driver_sql takes three (open a
    # cursor, execute, close it), about 0.1 ms of CPU per transaction (issue 18). Its error is
    # raised as SQLAlchemy's, as exec_driver_sql would: a lock still held after busy_timeout is an
    # OperationalError, answered 503 (gateway.ops).
    dialect = conn.dialect
    driver: Any = conn.connection.driver_connection  # aiosqlite.Connection
    try:
        await_(driver.execute("BEGIN IMMEDIATE"))
    except dialect.loaded_dbapi.Error as error:
        raise exc.DBAPIError.instance(
            "BEGIN IMMEDIATE", (), error, dialect.loaded_dbapi.Error, dialect=dialect
        ) from error


def _sqlite_reset(dbapi_connection: Any, record: Any, state: PoolResetState) -> None:
    # The pool's own reset is a ROLLBACK on every return, one more trip to aiosqlite's thread
    # after each commit (issue 18). A request's connection comes back committed or rolled back;
    # one that still holds a transaction (and with it the write lock) is rolled back here.
    if state.asyncio_safe and record.driver_connection.in_transaction:
        dbapi_connection.rollback()


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    ensure_sqlite_dir(url)
    if is_sqlite(url):
        # One connection per process: SQLite has one writer anyway, and queueing in the pool is
        # FIFO, whereas writers contending inside SQLite back off in busy_timeout sleeps of up to
        # 100 ms (seen as a p99 of seconds under load). Other processes still wait on busy_timeout.
        engine = create_async_engine(
            async_url(url),
            pool_size=1,
            max_overflow=0,
            pool_timeout=30,
            pool_reset_on_return=None,  # _sqlite_reset instead
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
        event.listen(engine.sync_engine.pool, "reset", _sqlite_reset)
        return engine
    # No pre-ping: it costs a round trip to the server per transaction (about 0.25 ms of CPU, a
    # tenth of a create; issue 18). A connection the server dropped (a restart, a failover) fails
    # at its first statement instead, as OperationalError, answered 503 with Retry-After
    # (gateway.ops), and every connection pooled before it is then replaced (SQLAlchemy's own
    # execution does so, and gateway.storage.direct too): one request per process sees it.
    return create_async_engine(async_url(url), pool_size=pool_size, max_overflow=pool_size)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: commit when the handler returns, roll back when it raises."""
    factory: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


# scope="function": the commit runs when the handler returns, before the response is sent, so a client
# never sees 201 for a write that then fails to commit.
DbSession = Annotated[AsyncSession, Depends(get_session, scope="function")]
