"""GMF practices (RX-14): which general practitioners share a practice, and from when.

``gmf_practices`` names a practice; ``gmf_members`` holds one row per membership: the practice,
the member as a person (ID-7: the first eight digits of his NIHDI number), the number as the
operator gave it, ``since`` and, once ended, ``until`` (exclusive). A prescription the patient
shows to "the GMF" (``prescribers = gmf``) is read by the GPs of these practices
(``consent._predicates.visible_to_prescribers``). Reference data: no patient, no health data.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gmf_practices",
        sa.Column("practice_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "gmf_members",
        sa.Column(
            "practice_id",
            sa.String(64),
            sa.ForeignKey("gmf_practices.practice_id"),
            primary_key=True,
        ),
        sa.Column("person", sa.String(8), primary_key=True),
        sa.Column("since", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("nihdi", sa.String(16), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_gmf_members_person", "gmf_members", ["person", "practice_id"])


def downgrade() -> None:
    op.drop_index("ix_gmf_members_person", table_name="gmf_members")
    op.drop_table("gmf_members")
    op.drop_table("gmf_practices")
