"""Tampering with the audit log as its database owner would, and the verdict that follows."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, create_engine, delete, select, text, update

from gateway.audit.chain import Anchor, verify
from gateway.audit.writer import GENESIS, Link, link_hash
from gateway.db import is_sqlite, sync_url
from gateway.storage.tables import audit_chain_head, audit_events


@contextmanager
def tampering(database_url: str) -> Iterator[Connection]:
    """A connection that can rewrite the log: the append-only triggers are lifted meanwhile."""
    engine = create_engine(sync_url(database_url))
    sqlite = is_sqlite(database_url)
    try:
        with engine.begin() as conn:
            if sqlite:
                conn.execute(text("DROP TRIGGER audit_events_no_update"))
                conn.execute(text("DROP TRIGGER audit_events_no_delete"))
            else:
                conn.execute(
                    text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
                )
            yield conn
            if not sqlite:
                conn.execute(
                    text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")
                )
    finally:
        engine.dispose()


def verdict(
    database_url: str, anchors: Sequence[Anchor] = ()
) -> tuple[bool, int | None, str | None]:
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            result = verify(
                conn, batch=2, anchors=anchors
            )  # small batches: the paging is walked too
    finally:
        engine.dispose()
    return result.ok, result.broken_seq, result.problem


def rewrite_chain(
    conn: Connection, change: Callable[[dict[str, Any]], dict[str, Any] | None]
) -> None:
    """Rewrite the whole table and its head, as an owner with every right could: ``change`` each
    row (None drops it), renumber, and recompute every link so that the chain verifies again."""
    rows = [dict(r._mapping) for r in conn.execute(select(audit_events).order_by("seq"))]
    conn.execute(delete(audit_events))
    seq, prev = 0, GENESIS
    for row in rows:
        changed = change(row)
        if changed is None:
            continue
        seq += 1
        changed.pop("hash")
        changed.update(seq=seq, prev_hash=prev)
        prev = link_hash(Link(**changed))
        conn.execute(audit_events.insert().values(**changed, hash=prev))
    conn.execute(update(audit_chain_head).values(seq=seq, hash=prev))
