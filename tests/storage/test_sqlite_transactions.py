"""On SQLite every request's transaction takes the write lock when it begins (``BEGIN IMMEDIATE``,
gateway.db): writers queue on the lock instead of failing when a read upgrades to a write, and a
lock another process keeps beyond the busy timeout is SQLAlchemy's ``OperationalError`` (which the
API answers 503, gateway.ops), not a driver error that would escape as a 500."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import event, exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db import create_engine, is_sqlite, session_factory


@pytest.fixture
def sqlite_url(database_url: str) -> str:
    if not is_sqlite(database_url):
        pytest.skip("SQLite's write lock (PostgreSQL has row locks and no BEGIN IMMEDIATE)")
    return database_url


@pytest.fixture
async def engine(sqlite_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(sqlite_url)

    def short_wait(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.cursor().execute("PRAGMA busy_timeout=50")  # after the gateway's 10 s

    event.listen(eng.sync_engine, "connect", short_wait)
    yield eng
    await eng.dispose()


@pytest.fixture
def other_process(sqlite_url: str) -> Iterator[sqlite3.Connection]:
    """Another writer on the same file (the claim worker, an operator's command)."""
    conn = sqlite3.connect(str(make_url(sqlite_url).database), isolation_level=None, timeout=0)
    yield conn
    conn.close()


async def test_a_transaction_holds_the_write_lock_from_its_start(
    engine: AsyncEngine, other_process: sqlite3.Connection
) -> None:
    async with session_factory(engine)() as session:
        await session.execute(text("SELECT 1"))  # a read: the lock is taken all the same
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other_process.execute("BEGIN IMMEDIATE")
        await session.commit()
    other_process.execute("BEGIN IMMEDIATE")  # released at commit
    other_process.execute("ROLLBACK")


async def test_a_lock_kept_elsewhere_is_sqlalchemys_operational_error(
    engine: AsyncEngine, other_process: sqlite3.Connection
) -> None:
    other_process.execute("BEGIN IMMEDIATE")
    try:
        async with session_factory(engine)() as session:
            with pytest.raises(exc.OperationalError, match="locked"):
                await session.execute(text("SELECT 1"))
    finally:
        other_process.execute("ROLLBACK")
    async with session_factory(engine)() as session:  # and the next transaction begins
        assert (await session.execute(text("SELECT 1"))).scalar() == 1


async def test_a_committed_transaction_is_not_rolled_back_on_return_to_the_pool(
    engine: AsyncEngine, other_process: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool's reset (gateway.db): no rollback after a commit, one trip less to aiosqlite's
    thread per request; a transaction that ends in an error is rolled back, its lock released."""
    sent: list[str] = []
    rollback = aiosqlite.Connection.rollback

    async def counted_rollback(self: aiosqlite.Connection) -> None:
        sent.append("rollback()")
        await rollback(self)

    monkeypatch.setattr(aiosqlite.Connection, "rollback", counted_rollback)
    async with session_factory(engine)() as session:
        connection = await session.connection()
        await (await connection.get_raw_connection()).driver_connection.set_trace_callback(
            sent.append
        )
        sent.clear()  # what connecting sent (SQLAlchemy's first connect rolls back once)
        await session.execute(text("SELECT 1"))
        await session.commit()
    async with session_factory(engine)() as session:
        await session.execute(text("SELECT 2"))
        await session.commit()
    assert sent == ["SELECT 1", "COMMIT", "BEGIN IMMEDIATE", "SELECT 2", "COMMIT"]

    async def failing_request() -> None:
        async with session_factory(engine)() as session:
            await session.execute(text("SELECT 3"))
            raise LookupError("the request fails")

    sent.clear()
    with pytest.raises(LookupError):
        await failing_request()
    assert sent == ["BEGIN IMMEDIATE", "SELECT 3", "rollback()", "ROLLBACK"]
    other_process.execute("BEGIN IMMEDIATE")
    other_process.execute("ROLLBACK")


async def test_a_connection_returned_inside_a_transaction_is_rolled_back(
    engine: AsyncEngine, other_process: sqlite3.Connection
) -> None:
    """Whatever left it open (here a statement behind SQLAlchemy's back), the pool does not keep
    a connection holding the write lock."""
    async with engine.connect() as connection:
        driver = (await connection.get_raw_connection()).driver_connection
        await connection.commit()
        await driver.execute("BEGIN IMMEDIATE")
        assert driver.in_transaction
    other_process.execute("BEGIN IMMEDIATE")
    other_process.execute("ROLLBACK")
