"""Versioned, encrypted resource storage with search columns.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "resource_versions",
        sa.Column("resource_type", sa.String(64), primary_key=True),
        sa.Column("logical_id", sa.String(64), primary_key=True),
        sa.Column("version_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("is_current", sa.Boolean, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("last_updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("patient_hmac", sa.String(64), nullable=True),
        sa.Column("status", sa.String(32), nullable=True),
        sa.Column("authored_on", sa.DateTime(timezone=True), nullable=True),
        sa.Column("author_nihdi", sa.String(16), nullable=True),
    )
    op.create_index(
        "ix_rv_current_patient",
        "resource_versions",
        ["resource_type", "is_current", "patient_hmac"],
    )
    op.create_index(
        "ix_rv_current_authored",
        "resource_versions",
        ["resource_type", "is_current", "authored_on"],
    )
    op.create_index(
        "ix_rv_current_created",
        "resource_versions",
        ["resource_type", "is_current", "created_at", "logical_id"],
    )
    op.create_table(
        "resource_identifiers",
        sa.Column("resource_type", sa.String(64), primary_key=True),
        sa.Column("token_hmac", sa.String(64), primary_key=True),
        sa.Column("logical_id", sa.String(64), nullable=False),
    )
    op.create_index("ix_ri_resource", "resource_identifiers", ["resource_type", "logical_id"])


def downgrade() -> None:
    op.drop_table("resource_identifiers")
    op.drop_table("resource_versions")
