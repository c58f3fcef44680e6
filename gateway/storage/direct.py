"""The hot statements, run on the driver's own connection (issue 18).

A create or a read by RID runs four or five small statements. Through the ORM session each one
costs about 0.3 ms of CPU more than the driver alone (bench/README.md, cost table): the session's
unit of work, SQLAlchemy's execution context, a greenlet switch per call. ``DirectStatement``
keeps SQLAlchemy for what it is good at here (the statement written once in Core, compiled once
per dialect with its type conversions, the session's transaction and pool) and sends the compiled
SQL straight to the driver connection of the session's transaction.

Nothing changes for the database: the same SQL with the same values, converted by the same bind
processors (``UtcDateTime`` makes instants UTC on both databases), in the same transaction, which
the session still begins (``BEGIN IMMEDIATE`` on SQLite) and commits. A driver error is raised as
SQLAlchemy's (``DBAPIError.instance``), and a lost connection is invalidated with the pool's
older ones, as the session would.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NoReturn, cast

from sqlalchemy import exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import ClauseElement, Insert, visitors
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter

Processor = Callable[[Any], Any]
_CONNECTION_KEY: Final = "gateway.storage.direct"


@dataclass(frozen=True)
class _Compiled:
    sql: str
    positional: tuple[str, ...] | None  # qmark (SQLite): the order of the values; else named
    defaults: Mapping[str, Any]  # literal values the statement binds itself (LIMIT 1...)
    binds: tuple[tuple[str, Processor], ...]
    row: Callable[[Iterable[Any]], Any] | None  # makes a named tuple of a row; None: no rows
    results: tuple[Processor | None, ...]

    def values(self, params: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        values = {**self.defaults, **params}
        for name, process in self.binds:
            values[name] = process(values[name])
        if self.positional is None:
            return values
        return [values[name] for name in self.positional]

    def rows(self, raw: Iterable[Sequence[Any]]) -> list[Any]:
        if self.row is None:
            return []
        make, results = self.row, self.results
        return [
            make([v if p is None or v is None else p(v) for p, v in zip(results, r, strict=True)])
            for r in raw
        ]


class DirectStatement:
    """A Core statement compiled once per dialect and executed on the driver connection of a
    session's transaction. Rows come back as named tuples (``row.logical_id``), converted by the
    columns' result processors, as SQLAlchemy's rows would be."""

    def __init__(self, statement: ClauseElement, **by_dialect: ClauseElement) -> None:
        """``statement`` on every database, or the one named for a dialect
        (``postgresql=...``): an ``INSERT ... ON CONFLICT`` is written per dialect."""
        self.statement = statement
        self.by_dialect = by_dialect
        for each in (statement, *by_dialect.values()):
            if any(isinstance(e, BindParameter) and e.expanding for e in visitors.iterate(each)):
                raise TypeError("an expanding IN is rendered per call: not a fixed statement")
            if any(not (column.key or "").isidentifier() for column in _columns(each)):
                raise TypeError("label every column returned (.label): rows are named tuples")
        self._inserts = isinstance(statement, Insert)
        self.returns_rows = bool(_columns(statement))
        self._compiled: dict[tuple[str, tuple[str, ...]], _Compiled] = {}

    def compiled(self, dialect: Dialect, params: Mapping[str, Any]) -> _Compiled:
        """Compiled for ``dialect``; an INSERT for the columns ``params`` name, as SQLAlchemy
        does (a column left out gets its database default: an autoincrement id)."""
        key = (dialect.name, tuple(params) if self._inserts else ())
        found = self._compiled.get(key)
        if found is None:
            statement = self.by_dialect.get(dialect.name, self.statement)
            found = self._compiled[key] = _compile(statement, dialect, key[1])
        return found

    async def execute(self, session: AsyncSession, params: Mapping[str, Any]) -> list[Any]:
        """Run once with ``params``; the rows it returns (none for a plain INSERT)."""
        return await self._run(session, [params])

    async def execute_each(
        self, session: AsyncSession, rows: Sequence[Mapping[str, Any]]
    ) -> list[Any]:
        """Run once per row of ``rows``, in order; the rows returned, together. A statement that
        returns nothing goes to the driver's ``executemany`` (one call for a batch of links)."""
        if not self.returns_rows:
            return await self._run(session, rows) if rows else []
        found: list[Any] = []
        for params in rows:
            found.extend(await self._run(session, [params]))
        return found

    async def _run(self, session: AsyncSession, batch: Sequence[Mapping[str, Any]]) -> list[Any]:
        """One statement, or a batch of one INSERT (``executemany``), in the session's
        transaction; its errors raised as SQLAlchemy's, its listeners told."""
        connection, raw_connection = await self._prepare(session)
        driver: Any = raw_connection.driver_connection
        compiled = self.compiled(connection.dialect, batch[0])
        values = [compiled.values(params) for params in batch]
        sent = values[0] if len(values) == 1 else values  # as SQLAlchemy reports them
        raw: list[Any] = []
        try:
            if connection.dialect.name == "sqlite":
                if len(values) == 1:
                    raw = list(await driver.execute_fetchall(compiled.sql, values[0]))
                else:
                    await driver.executemany(compiled.sql, values)
            elif len(values) == 1:
                cursor = await driver.execute(compiled.sql, values[0])
                raw = await cursor.fetchall() if cursor.description is not None else []
            else:
                async with driver.cursor() as cursor:
                    await cursor.executemany(compiled.sql, values)
        except connection.dialect.loaded_dbapi.Error as error:
            await _raise(connection, raw_connection, compiled.sql, sent, error)
        count = len(raw) if self.returns_rows else len(values)
        _executed(connection, compiled.sql, sent, count, many=len(values) > 1)
        return compiled.rows(raw)

    async def _prepare(
        self, session: AsyncSession
    ) -> tuple[AsyncConnection, PoolProxiedConnection]:
        """The session's connection in its current transaction (begun here if need be) and the
        pool's connection under it, looked up once per transaction: a new transaction may hold
        another pooled connection."""
        transaction = session.sync_session.get_transaction()
        cached = session.info.get(_CONNECTION_KEY)
        if transaction is not None and cached is not None and cached[0] is transaction:
            return cached[1], cached[2]
        connection = await session.connection()
        raw_connection = await connection.get_raw_connection()
        transaction = session.sync_session.get_transaction()
        session.info[_CONNECTION_KEY] = (transaction, connection, raw_connection)
        return connection, raw_connection


@dataclass(frozen=True)
class _Done:
    """What an ``after_cursor_execute`` listener reads of the cursor."""

    rowcount: int


def _executed(
    connection: AsyncConnection, sql: str, values: Any, rowcount: int, *, many: bool = False
) -> None:
    """Tell the engine's ``after_cursor_execute`` listeners, as SQLAlchemy's own execution does:
    what watches the statements (the audit records metric, gateway.ops) sees these too."""
    sync = connection.sync_connection
    if sync is not None and sync.dispatch.after_cursor_execute:
        sync.dispatch.after_cursor_execute(sync, _Done(rowcount), sql, values, None, many)


async def _raise(
    connection: AsyncConnection,
    raw_connection: PoolProxiedConnection,
    sql: str,
    values: Any,
    error: Any,
) -> NoReturn:
    """The driver's error as SQLAlchemy raises it (``exc.DBAPIError`` and its subclasses: the
    outage handlers and every ``except IntegrityError`` see what they expect); a connection the
    error says is gone is invalidated, and so is every connection pooled before it (the server
    went away for all of them), as SQLAlchemy's ``_handle_dbapi_exception`` does: the pool
    replaces them at their next checkout (the engine has no pre-ping, gateway.db)."""
    dialect = connection.dialect
    lost = dialect.is_disconnect(error, raw_connection.dbapi_connection, None)
    if lost:
        connection.sync_engine.pool._invalidate(raw_connection, error, _checkin=False)
        await connection.invalidate(error)
    raise exc.DBAPIError.instance(
        sql,
        values,
        error,
        dialect.loaded_dbapi.Error,
        dialect=dialect,
        connection_invalidated=lost,
    ) from error


def _compile(statement: ClauseElement, dialect: Dialect, keys: Sequence[str]) -> _Compiled:
    compiled = cast(SQLCompiler, statement.compile(dialect=dialect, column_keys=list(keys)))
    # The bind processors SQLAlchemy applies itself to these parameters for this dialect.
    processors = compiled._bind_processors
    row: Callable[[Iterable[Any]], Any] | None = None
    results: tuple[Processor | None, ...] = ()
    columns = _columns(statement)
    if columns:
        named = cast(Any, namedtuple)("Row", [column.key for column in columns])
        row = named._make
        results = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        )
    return _Compiled(
        sql=str(compiled),
        positional=None if compiled.positiontup is None else tuple(compiled.positiontup),
        defaults={
            name: bind.effective_value
            for bind, name in compiled.bind_names.items()
            if not bind.required  # a literal the statement carries (LIMIT 1)
        },
        binds=tuple((name, p) for name, p in processors.items() if callable(p)),
        row=row,
        results=results,
    )


def _columns(statement: ClauseElement) -> list[Any]:
    """What a row of ``statement`` holds: a SELECT's columns, an INSERT's RETURNING."""
    return list(getattr(statement, "exported_columns", ()))
