"""The hot statements sent to the driver directly (gateway.storage.direct) write and read exactly
what SQLAlchemy's own execution would, on both databases: the same values after the same type
conversions (instants made UTC whatever their offset), the same rows back, in the session's
transaction, and a driver error raised as SQLAlchemy's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, exc, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.db import create_engine, session_factory
from gateway.storage.direct import DirectStatement
from gateway.storage.tables import audit_pending, resource_versions

rv = resource_versions
INSERT = DirectStatement(rv.insert())
READ = DirectStatement(
    select(rv)
    .where(rv.c.resource_type == "Basic", rv.c.logical_id >= "a")
    .order_by(rv.c.logical_id)
)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url)
    yield eng
    await eng.dispose()


def version(logical_id: str, instant: datetime, **overrides: Any) -> dict[str, Any]:
    row = {
        "resource_type": "Basic",
        "logical_id": logical_id,
        "version_id": 1,
        "is_current": True,
        "deleted": False,
        "last_updated": instant,
        "created_at": instant,
        "key_id": "k1",
        "body": b"\x00sealed\xff",
        "patient_hmac": "ab" * 32,
        "status": "active",
        "authored_on": instant,
        "author_nihdi": "10000000000",
        "period_start": None,
        "period_end": instant + timedelta(days=90),
        "category": None,
        "actor_nihdi": None,
        "kind": None,
        "pharmacy_visibility": None,
        "visible_pharmacy": None,
        "prescriber_visibility": None,
        "based_on": None,
        "holder_nihdi": None,
        "lifecycle": None,
        "holder_hmac": None,
    }
    return {**row, **overrides}


async def write_both(engine: AsyncEngine, instant: datetime) -> None:
    """Row ``a`` through SQLAlchemy's execution, row ``b`` through the driver."""
    async with session_factory(engine)() as session:
        await session.execute(rv.insert(), version("a", instant))
        await INSERT.execute(session, version("b", instant))
        await session.commit()


# Belgian clients send local offsets (+01:00 in winter, +02:00 in summer); others send Z or any
# offset: every one is the same instant once stored (ID-7).
instants = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
).flatmap(
    lambda utc: st.sampled_from([0, 60, 120, -300, 330, 840]).map(
        lambda minutes: utc.astimezone(timezone(timedelta(minutes=minutes)))
    )
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(instant=instants)
async def test_a_direct_insert_stores_what_sqlalchemy_stores(
    engine: AsyncEngine, instant: datetime
) -> None:
    async with engine.begin() as conn:
        await conn.execute(rv.delete())
    await write_both(engine, instant)
    async with engine.connect() as conn:
        a, b = (await conn.execute(select(rv).order_by(rv.c.logical_id))).all()
    assert a._asdict() | {"logical_id": "b"} == b._asdict()
    assert b.last_updated == instant
    assert b.last_updated.tzinfo == UTC


async def test_direct_rows_are_sqlalchemy_rows(engine: AsyncEngine) -> None:
    instant = datetime(2026, 3, 29, 2, 30, tzinfo=timezone(timedelta(hours=2)))  # DST night
    await write_both(engine, instant)
    async with session_factory(engine)() as session:
        expected = (await session.execute(READ.statement)).all()  # type: ignore[call-overload]
        got = await READ.execute(session, {})
    assert [tuple(row) for row in got] == [tuple(row) for row in expected]
    assert (got[1].logical_id, got[1].authored_on) == ("b", instant)
    assert (got[1].is_current, got[1].body) == (True, b"\x00sealed\xff")


async def test_a_direct_statement_belongs_to_the_session_transaction(
    engine: AsyncEngine,
) -> None:
    instant = datetime(2026, 12, 2, 16, 41, 40, tzinfo=UTC)
    async with session_factory(engine)() as session:
        await INSERT.execute(session, version("a", instant))
        assert len(await READ.execute(session, {})) == 1  # seen inside
        await session.rollback()
        assert await READ.execute(session, {}) == []  # a new transaction, nothing kept
        await INSERT.execute(session, version("b", instant))
        await session.commit()
    async with engine.connect() as conn:
        assert (await conn.execute(select(rv.c.logical_id))).scalars().all() == ["b"]


def test_a_statement_whose_sql_depends_on_its_values_is_refused() -> None:
    """An expanding ``IN`` is rendered per call by SQLAlchemy: not a fixed statement."""
    with pytest.raises(TypeError, match="expanding"):
        DirectStatement(select(rv).where(rv.c.logical_id.in_(["a", "b"])))


def test_a_column_without_a_name_is_refused_when_the_statement_is_written() -> None:
    """A row is a named tuple: a function's column needs a label, or the first call would fail
    (on the one database that runs the statement)."""
    with pytest.raises(TypeError, match="label"):
        DirectStatement(select(func.pg_advisory_xact_lock(1)))
    assert DirectStatement(select(func.pg_advisory_xact_lock(1).label("locked"))).returns_rows


async def test_a_driver_error_is_sqlalchemys(engine: AsyncEngine) -> None:
    instant = datetime(2026, 12, 2, tzinfo=UTC)
    async with session_factory(engine)() as session:
        await INSERT.execute(session, version("a", instant))
        with pytest.raises(exc.IntegrityError):
            await INSERT.execute(session, version("a", instant))  # same primary key


async def test_an_insert_leaves_out_what_the_database_fills_in(engine: AsyncEngine) -> None:
    """``audit_pending.id`` is the database's; a batch goes to the driver's executemany."""
    rows = [
        {
            "event_id": f"e{n}",
            "recorded_at": datetime(2026, 12, 2, 10, n, tzinfo=timezone(timedelta(hours=1))),
            "action": "R",
            "outcome": "0",
            "reason": "permit-author",
            "resource_type": "MedicationRequest",
            "resource_id": None,
            "patient_hmac": None,
            "client_id": "c",
            "role": "prescriber",
            "actor_nihdi": None,
            "request_id": None,
            "key_id": "k1",
            "body": b"x",
        }
        for n in range(3)
    ]
    pending = DirectStatement(audit_pending.insert())
    async with session_factory(engine)() as session:
        await pending.execute_each(session, rows)
        await session.commit()
    async with engine.connect() as conn:
        stored = (await conn.execute(select(audit_pending).order_by(audit_pending.c.id))).all()
    assert [row.event_id for row in stored] == ["e0", "e1", "e2"]
    assert stored[0].id < stored[1].id < stored[2].id
    assert stored[0].recorded_at == datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


async def test_statement_listeners_see_direct_statements(engine: AsyncEngine) -> None:
    """What watches the engine's statements (the audit records metric) counts these rows too."""
    seen: list[tuple[str, int]] = []

    def after(_conn: Any, cursor: Any, statement: str, *_rest: Any) -> None:
        seen.append((statement.split(" (")[0], cursor.rowcount))

    event.listen(engine.sync_engine, "after_cursor_execute", after)
    instant = datetime(2026, 12, 2, tzinfo=UTC)
    async with session_factory(engine)() as session:
        await INSERT.execute(session, version("a", instant))
        await READ.execute(session, {})
        await session.commit()
    assert ("INSERT INTO resource_versions", 1) in seen
    assert any(statement.startswith("SELECT") and count == 1 for statement, count in seen)


async def test_a_server_restart_costs_one_statement_per_process(engine: AsyncEngine) -> None:
    """The engine does not ping each connection before a transaction (gateway.db): when the
    server drops them all (a restart, a failover), the first statement on a pooled connection
    fails as SQLAlchemy's OperationalError (answered 503, retryable), whether SQLAlchemy or the
    driver ran it, and the connections pooled with it are replaced: the next ones succeed."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the server drops connections: PostgreSQL (SQLite is a file in the process)")
    sessions = session_factory(engine)
    for run in (READ.execute, lambda s, p: s.execute(select(func.count()).select_from(rv))):
        held = [sessions() for _ in range(3)]  # three connections, then back in the pool
        pids = [(await session.execute(select(func.pg_backend_pid()))).scalar() for session in held]
        for session in held:
            await session.close()
        admin = create_async_engine(engine.url)  # drops them, as a restart does
        async with admin.connect() as conn:
            for pid in pids:
                await conn.execute(select(func.pg_terminate_backend(pid)))
        await admin.dispose()
        async with sessions() as session:
            with pytest.raises(exc.OperationalError) as lost:
                await run(session, {})
            assert lost.value.connection_invalidated
        for _ in range(3):  # the pool's other connections are not handed out dead
            async with sessions() as session:
                assert (await session.execute(select(1))).scalar() == 1
