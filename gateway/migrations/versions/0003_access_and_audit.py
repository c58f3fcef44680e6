"""Access decisions and audit: search columns for visibility and consent, the audit chain.

``resource_versions`` gains the columns the access decision and its SQL search filter need
(docs/architecture.md 4c, 5): a period (prescription validity, relationship legal end), the Consent
category, actor and relationship kind, and the prescription's visibility (RX-13, RX-14).

``audit_events`` is append-only (docs/architecture.md 8): a trigger refuses UPDATE and DELETE on both
PostgreSQL and SQLite, so that even a bug cannot rewrite the log; ``audit_chain_head`` holds the
newest link (``gateway.audit.writer``), moved forward by an insert trigger.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _new_columns() -> tuple[sa.Column[object], ...]:
    return (
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("category", sa.String(32), nullable=True),
        sa.Column("actor_nihdi", sa.String(16), nullable=True),
        sa.Column("kind", sa.String(32), nullable=True),
        sa.Column("pharmacy_visibility", sa.String(8), nullable=True),
        sa.Column("visible_pharmacy", sa.String(16), nullable=True),
        sa.Column("prescriber_visibility", sa.String(8), nullable=True),
    )


_PG_FUNCTION = """
CREATE FUNCTION audit_events_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$ LANGUAGE plpgsql
"""
_PG_TRIGGER = """
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()
"""
# The chain head follows every insert inside the database: one statement fewer per audited
# request, and the head cannot disagree with the last row the writer inserted.
_PG_ADVANCE = """
CREATE FUNCTION audit_chain_advance() RETURNS trigger AS $$
BEGIN
    UPDATE audit_chain_head SET seq = NEW.seq, hash = NEW.hash WHERE id = 1;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql
"""
_PG_ADVANCE_TRIGGER = """
CREATE TRIGGER audit_events_advance_head AFTER INSERT ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_chain_advance()
"""
_SQLITE_TRIGGERS = (
    """
    CREATE TRIGGER audit_events_advance_head AFTER INSERT ON audit_events
    BEGIN UPDATE audit_chain_head SET seq = NEW.seq, hash = NEW.hash WHERE id = 1; END
    """,
    """
    CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END
    """,
    """
    CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END
    """,
)


def upgrade() -> None:
    with op.batch_alter_table("resource_versions") as batch:
        for column in _new_columns():
            batch.add_column(column)
    op.create_index(
        "ix_rv_current_actor", "resource_versions", ["resource_type", "is_current", "actor_nihdi"]
    )

    op.create_table(
        "audit_events",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("resource_type", sa.String(64), nullable=False),
        sa.Column("resource_id", sa.String(64), nullable=True),
        sa.Column("patient_hmac", sa.String(64), nullable=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("actor_nihdi", sa.String(16), nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index(
        "ix_audit_patient_recorded", "audit_events", ["patient_hmac", "recorded_at", "seq"]
    )
    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.execute(
        sa.text("INSERT INTO audit_chain_head (id, seq, hash) VALUES (1, 0, :genesis)").bindparams(
            genesis="0" * 64
        )
    )

    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)
        op.execute(_PG_ADVANCE)
        op.execute(_PG_ADVANCE_TRIGGER)
    else:
        for trigger in _SQLITE_TRIGGERS:
            op.execute(trigger)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_advance_head ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_chain_advance()")
        op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
    op.drop_table("audit_chain_head")
    op.drop_table("audit_events")
    op.drop_index("ix_rv_current_actor", table_name="resource_versions")
    with op.batch_alter_table("resource_versions") as batch:
        for column in reversed(_new_columns()):
            batch.drop_column(column.name)
