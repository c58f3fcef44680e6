"""Moving stored bodies to the current encryption key, online (``gateway keys reencrypt``), and
counting what each key still seals (``gateway keys status``).

Each batch is its own short transaction: read up to ``batch`` rows sealed under another key, in
primary-key order after the last one seen, reseal them under the current key and write body and
``key_id`` back. The API keeps running meanwhile:

- A stored body never changes once written (a new version is a new row), so a row resealed while
  a request reads it reads the same either way, and nothing a request writes is overwritten: the
  update only sets ``body``/``key_id``, and only where the row still names the key it was read
  under.
- On PostgreSQL the batch locks its rows with ``FOR UPDATE SKIP LOCKED``: a row a request holds
  (a version being retired) is left for the next pass instead of waited for, so the re-encryption
  never waits on the API and the two cannot deadlock; the API waits at most one batch.
  On SQLite one writer at a time is the rule anyway.
- Interrupted, it resumes by running again: rows already moved no longer match.

Audit events are not resealed: the audit chain commits to each event's ciphertext and key id
(``gateway.audit.writer.link_hash``) and nothing may update them (SEC-5, SEC-9), so an event keeps
the key that sealed it. ``status`` counts them, so an operator knows which older key the audit log
still needs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Column, ColumnElement, Table, bindparam, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.storage.crypto import Keyring, associated_data, signing_key_associated
from gateway.storage.tables import audit_events, audit_pending, resource_versions, signing_keys

BATCH: Final = 200
# Passes over a table before giving up on rows that stayed locked by requests every time.
MAX_PASSES: Final = 5


@dataclass(frozen=True)
class Sealed:
    """A table whose ``body_column`` is sealed under the key its ``key_id`` column names."""

    table: Table
    body_column: str
    associated: Callable[[Any], bytes]
    resealable: bool = True

    @property
    def key(self) -> Sequence[Column[Any]]:
        return list(self.table.primary_key.columns)


SEALED: Final = (
    Sealed(
        resource_versions,
        "body",
        lambda row: associated_data(row.resource_type, row.logical_id, row.version_id),
    ),
    Sealed(signing_keys, "private_key", lambda row: signing_key_associated(row.kid)),
    # the chain commits to the ciphertext: counted, never resealed (module docstring); events
    # waiting to be chained are chained as they were sealed
    Sealed(audit_events, "body", lambda row: b"", resealable=False),
    Sealed(audit_pending, "body", lambda row: b"", resealable=False),
)

Progress = Callable[[str, int, int], None]  # table, rows moved so far, rows to move at the start


async def key_usage(session: AsyncSession) -> dict[str, dict[str, int]]:
    """Per table, rows per key id."""
    usage: dict[str, dict[str, int]] = {}
    for sealed in SEALED:
        key_id = sealed.table.c.key_id
        rows = await session.execute(select(key_id, func.count()).group_by(key_id))
        usage[sealed.table.name] = {str(k): int(n) for k, n in rows.all()}
    return usage


@dataclass(frozen=True)
class Moved:
    """What ``reencrypt`` did to one table."""

    moved: int  # rows resealed under the current key
    remaining: int  # rows still under another key when it stopped (0: that key may go)


async def reencrypt(
    sessions: async_sessionmaker[AsyncSession],
    keyring: Keyring,
    *,
    batch: int = BATCH,
    progress: Progress | None = None,
) -> dict[str, Moved]:
    """Reseal every resealable row not under ``keyring``'s current key, per table."""
    return {
        sealed.table.name: await _reencrypt_table(sessions, keyring, sealed, batch, progress)
        for sealed in SEALED
        if sealed.resealable
    }


async def _reencrypt_table(
    sessions: async_sessionmaker[AsyncSession],
    keyring: Keyring,
    sealed: Sealed,
    batch: int,
    progress: Progress | None,
) -> Moved:
    table, key = sealed.table, sealed.key
    old = table.c.key_id != keyring.key_id
    write = (
        update(table)
        .where(*(c == bindparam(f"k_{c.name}") for c in key))
        .where(table.c.key_id == bindparam("k_old"))
        .values({sealed.body_column: bindparam("k_body"), "key_id": keyring.key_id})
    )
    remaining = await _count(sessions, table, old)
    to_move, moved = remaining, 0
    # A pass leaves behind the rows a request held locked (PostgreSQL); the next one takes them.
    for _ in range(MAX_PASSES):
        if remaining == 0:
            break
        after: tuple[Any, ...] | None = None
        while True:
            async with sessions() as session, session.begin():
                query = select(*key, table.c.key_id, table.c[sealed.body_column]).where(old)
                if after is not None:
                    query = query.where(tuple_(*key) > tuple_(*after))
                query = query.order_by(*key).limit(batch)
                if session.get_bind().dialect.name == "postgresql":
                    query = query.with_for_update(skip_locked=True)
                rows = (await session.execute(query)).all()
                if rows:
                    await session.execute(write, [_resealed(keyring, sealed, row) for row in rows])
            if not rows:
                break
            moved += len(rows)
            after = tuple(rows[-1]._mapping[c.name] for c in key)
            if progress is not None:
                progress(table.name, moved, to_move)
        remaining = await _count(sessions, table, old)
    return Moved(moved, remaining)


def _resealed(keyring: Keyring, sealed: Sealed, row: Any) -> dict[str, Any]:
    m = row._mapping
    body = keyring.reseal(m[sealed.body_column], sealed.associated(row), m["key_id"])
    return {
        **{f"k_{c.name}": m[c.name] for c in sealed.key},
        "k_old": m["key_id"],
        "k_body": body,
    }


async def _count(
    sessions: async_sessionmaker[AsyncSession], table: Table, where: ColumnElement[bool]
) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(table).where(where)) or 0)
