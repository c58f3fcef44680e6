"""Patient accounts lose their lockout counters: wrong passwords are throttled per (account,
client address) in the key-value store instead (gateway/auth/throttle.py), so that nobody can
lock a patient out by knowing his SSIN (OWASP ASVS V2.2.1).

The counters held only transient state (failures in a row, locked until): dropping them loses
nothing a patient or an operator needs. Downgrade restores them empty (no account locked).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch mode: SQLite rebuilds the table, PostgreSQL gets plain ALTER TABLE ... DROP COLUMN.
    with op.batch_alter_table("patient_accounts") as batch:
        batch.drop_column("failed_attempts")
        batch.drop_column("locked_until")


def downgrade() -> None:
    with op.batch_alter_table("patient_accounts") as batch:
        batch.add_column(
            sa.Column("failed_attempts", sa.Integer, nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
