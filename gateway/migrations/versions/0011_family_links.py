"""Family links (PO-3): a parent acts for his child under 12.

``family_links`` holds one row per link: the child and the parent as keyed hashes of their SSIN
(like ``patient_hmac``; no SSIN is stored in clear), ``since`` and, once unlinked, ``until``
(exclusive). In Belgium the link comes from the National Register's household composition; here
the operator keeps it (``gateway family link|unlink|list``).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "family_links",
        sa.Column("child_hmac", sa.String(64), primary_key=True),
        sa.Column("parent_hmac", sa.String(64), primary_key=True),
        sa.Column("since", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("family_links")
