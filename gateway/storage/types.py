"""Column types shared by every table.

``UtcDateTime``: instants are stored, indexed and compared as UTC on every database
(docs/architecture.md, section 10). SQLAlchemy's ``DateTime(timezone=True)`` keeps the zone on
PostgreSQL (``timestamptz``) but on SQLite silently drops it when binding, so
``2026-12-02T16:41:40+01:00`` was stored as ``2026-12-02 16:41:40`` and read back as 16:41:40 UTC,
an hour late. This type converts every value to UTC before it reaches the driver, on both databases,
and hands back aware UTC datetimes. SQLite stores them as ISO text of one fixed width, so comparing
the text compares the instants.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class NaiveDatetimeError(ValueError):
    """A datetime without a zone reached the database: a programming error, never bad input
    (requests are parsed into aware datetimes first)."""


class UtcDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise NaiveDatetimeError("a datetime bound to the database needs a time zone")
        utc = value.astimezone(UTC)
        # SQLite has no zone to store: the UTC wall time is the instant.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def coerce_compared_value(self, op: Any, value: Any) -> Any:
        """A datetime operand is bound through this type (made UTC); anything else, such as the
        ``timedelta`` of ``column - timedelta(...)``, keeps ``DateTime``'s own rules (Interval)."""
        return (
            self
            if isinstance(value, datetime)
            else self.impl_instance.coerce_compared_value(op, value)
        )

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):  # not a value this type wrote
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
