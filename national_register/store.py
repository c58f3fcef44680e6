"""The register's own store: the SQLite file ``national_register.db`` or the PostgreSQL schema
``national_register``. SQLAlchemy 2 Core over async drivers, tables created on open (a mock has no
migrations), the seed persons inserted when their cards are missing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    MetaData,
    String,
    Table,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mock_services.store import create_tables, in_schema, postgres_engine, sqlite_engine
from national_register.cards import Card

SCHEMA = "national_register"
metadata = MetaData()
cards = Table(
    "cards",
    metadata,
    Column("card_number", String(12), primary_key=True),
    Column("ssin", String(11), nullable=False, index=True),
    Column("valid_from", Date, nullable=False),
    Column("valid_until", Date, nullable=False),
    Column("replaced_at", DateTime(timezone=True)),
)


class CardTaken(Exception):
    """The card number was issued to another person."""


class RegisterStore:
    def __init__(
        self, engine: AsyncEngine, owner: AsyncEngine, *, schema: str | None = None
    ) -> None:
        self._engine = engine
        self._owner = owner  # the engine to dispose of (``engine`` may be an options view)
        self._schema = schema
        self._lock = asyncio.Lock()  # one writer at a time in this process (SQLite)
        self._ready = False

    async def open(self, seed: Iterable[Card] = ()) -> None:
        if self._ready:
            return
        async with self._lock, self._engine.begin() as conn:
            await create_tables(conn, metadata, self._schema)
            for card in seed:
                if await _find(conn, card.card_number) is None:
                    await conn.execute(insert(cards).values(**_row(card)))
            self._ready = True

    async def close(self) -> None:
        await self._owner.dispose()

    async def find(self, card_number: str) -> Card | None:
        async with self._engine.connect() as conn:
            return await _find(conn, card_number)

    async def issue(self, card: Card, now: datetime) -> bool:
        """Make ``card`` the person's current card, replacing the one they held. ``False`` when
        it already was theirs (nothing changes); ``CardTaken`` when it is another person's."""
        async with self._lock, self._engine.begin() as conn:
            found = await _find(conn, card.card_number, for_update=True)
            if found is not None:
                if found.ssin != card.ssin:
                    raise CardTaken(card.card_number)
                return False
            await conn.execute(
                update(cards)
                .where(cards.c.ssin == card.ssin, cards.c.replaced_at.is_(None))
                .values(replaced_at=now)
            )
            await conn.execute(insert(cards).values(**_row(card)))
            return True


def _row(card: Card) -> dict[str, Any]:
    return {
        "card_number": card.card_number,
        "ssin": card.ssin,
        "valid_from": card.valid_from,
        "valid_until": card.valid_until,
        "replaced_at": card.replaced_at,
    }


async def _find(
    conn: AsyncConnection, card_number: str, *, for_update: bool = False
) -> Card | None:
    query = select(cards).where(cards.c.card_number == card_number)
    row = (await conn.execute(query.with_for_update() if for_update else query)).one_or_none()
    if row is None:
        return None
    replaced = row.replaced_at
    if replaced is not None and replaced.tzinfo is None:  # SQLite keeps no zone: written in UTC
        replaced = replaced.replace(tzinfo=UTC)
    return Card(row.card_number, row.ssin, row.valid_from, row.valid_until, replaced)


def open_store(*, data_dir: Path, database_url: str | None = None) -> RegisterStore:
    """The SQLite file under ``data_dir``, or the schema ``national_register`` at ``database_url``."""
    if database_url is not None:
        engine = postgres_engine(database_url)
        return RegisterStore(in_schema(engine, SCHEMA), engine, schema=SCHEMA)
    engine = sqlite_engine(data_dir / "national_register.db")
    return RegisterStore(engine, engine)
