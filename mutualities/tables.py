"""The tables of one fund's store (the same in each SQLite file and each PostgreSQL schema)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    TypeDecorator,
)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, naive UTC in the column (SQLite has no tz)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


metadata = MetaData()

fund_state = Table(
    "fund_state",
    metadata,
    Column("fund", String(3), primary_key=True),
    Column("last_attestation", Integer, nullable=False),
    Column("last_event", Integer, nullable=False),
)

# One row per idempotency key: the answer given, returned byte for byte on every replay.
claim_requests = Table(
    "claim_requests",
    metadata,
    Column("idempotency_key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),  # accepted | rejected
    Column("attestation", String(40), nullable=True),
    Column("error_codes", String(400), nullable=False),
    Column("response", LargeBinary, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("deliveries", Integer, nullable=False),
)

attestations = Table(
    "attestations",
    metadata,
    Column("number", String(40), primary_key=True),
    Column("idempotency_key", String(255), nullable=False, unique=True),
    Column("provider", String(11), nullable=False),
    Column("patient", String(11), nullable=False),
    Column("preferential", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("accepted_at", UtcDateTime, nullable=False),
    Column("settle_due_at", UtcDateTime, nullable=False, index=True),
    Column("settled_at", UtcDateTime, nullable=True),
    Column("cancelled_at", UtcDateTime, nullable=True),
    Column("cancel_reason", String(1), nullable=True),
    Column("detail", LargeBinary, nullable=False),  # JSON: claim type, subType, priced lines
    Column("cancel_response", LargeBinary, nullable=True),
)

# The services of live attestations, for the duplicate check (AT-7); cancelled ones are inactive.
services = Table(
    "services",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("attestation", String(40), nullable=False, index=True),
    Column("provider", String(11), nullable=False),
    Column("patient", String(11), nullable=False),
    Column("service_date", Date, nullable=False),
    Column("code", String(6), nullable=False),
    Column("count", Integer, nullable=False),
    Column("active", Boolean, nullable=False),
    Index("ix_services_patient_date", "patient", "service_date"),
)

# The settlement feed: settled and cancelled ClaimResponses, in the order they happened.
events = Table(
    "events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("attestation", String(40), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# Maximum billing: a household's patient shares counted per calendar year, in cents, and the
# Brussels date they reached its ceiling (mutualities/maximum_billing.py).
household_counters = Table(
    "household_counters",
    metadata,
    Column("household", String(40), primary_key=True),
    Column("year", Integer, primary_key=True, autoincrement=False),
    Column("counted_cents", Integer, nullable=False),
    Column("reached_on", Date, nullable=True),
)
