"""A patient's prescriptions in date order from one index (issue 18).

``ix_rv_current_patient`` (resource_type, is_current, patient_hmac) found a patient's current
rows, which were then read and sorted; ``ix_rv_current_patient_authored`` adds ``authored_on`` so
that a search by patient sorted by date (``_sort=authoredon``, ``-authoredon``) and its paging
cursor walk the patient's rows in order. It replaces the old index, whose columns are its prefix
(every query that used the old one can use it), so a write still maintains one index for the
patient, not two.

Numbered 0012 but applied after 0013, which was committed first (the chain is linear).

Revision ID: 0012
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ["resource_type", "is_current", "patient_hmac"]


def upgrade() -> None:
    op.create_index(
        "ix_rv_current_patient_authored", "resource_versions", [*_COLUMNS, "authored_on"]
    )
    op.drop_index("ix_rv_current_patient", table_name="resource_versions")


def downgrade() -> None:
    op.create_index("ix_rv_current_patient", "resource_versions", _COLUMNS)
    op.drop_index("ix_rv_current_patient_authored", table_name="resource_versions")
