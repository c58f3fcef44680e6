"""Mandates (RX-16, PO-4): the holder of a proxy mandate, searchable without his SSIN in clear.

A mandate is a ``Consent`` of category ``mandate`` about its mandator (``patient_hmac``). A
professional holder (a nursing home's pharmacy) is its organisation NIHDI in ``actor_nihdi``; an
individual holder is a person, so ``resource_versions`` gains ``holder_hmac``: the keyed HMAC of his
SSIN, as ``patient_hmac`` is of the patient's, so that "the mandates I hold" is one indexed query
and the decision's facts name the caller's mandates without decrypting a body.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-09
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("resource_versions") as batch:
        batch.add_column(sa.Column("holder_hmac", sa.String(64), nullable=True))
    op.create_index(
        "ix_rv_current_holder", "resource_versions", ["resource_type", "is_current", "holder_hmac"]
    )


def downgrade() -> None:
    op.drop_index("ix_rv_current_holder", table_name="resource_versions")
    with op.batch_alter_table("resource_versions") as batch:
        batch.drop_column("holder_hmac")
