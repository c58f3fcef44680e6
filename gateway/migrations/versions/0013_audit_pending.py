"""Group-committed audit: events recorded in a change's transaction wait here to be chained.

A request records its AuditEvents in its own transaction, as before, but into ``audit_pending``
instead of ``audit_events``: it takes no lock on the chain head. Once that transaction has
committed, the process's group writer (``gateway.audit.group``) moves a batch of pending events
into the chain (``audit_events``, one lock of ``audit_chain_head`` per batch) and deletes them here,
in one transaction, before the requests are answered. ``id`` keeps the order they were recorded in.
The table holds the same columns as ``audit_events`` except the chain's (``seq``, ``prev_hash``,
``hash``); it is not append-only, since chaining deletes from it.

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_pending",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
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
    )


def downgrade() -> None:
    # Dropping pending events would lose audit records: a gateway chains them when it runs.
    waiting = op.get_bind().execute(sa.text("SELECT count(*) FROM audit_pending")).scalar_one()
    if waiting:
        raise RuntimeError(f"{waiting} audit events wait to be chained: start a gateway first")
    op.drop_table("audit_pending")
