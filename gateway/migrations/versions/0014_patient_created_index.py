"""A patient's prescriptions newest first from one index (issue 18).

A search by patient is sorted by creation unless it asks otherwise (``_sort``; the store's
``NEWEST_FIRST``). ``ix_rv_current_created`` (resource_type, is_current, created_at, logical_id)
already holds that order for every patient at once, and SQLite, which plans without statistics,
chose it over the patient's index: it walked every patient's current rows, newest first, until
it had a page of this one's, so a search cost more as the database grew (a patient with 10
prescriptions: 4 ms of CPU beside 100 others, 10.6 ms beside about 7,000, 17.5 ms beside about
14,000; bench/README.md).
``ix_rv_current_patient_created`` holds a patient's rows in that order, the page's tie-break
(``logical_id``) included, so the page and its paging cursor read only that patient's rows.
PostgreSQL, which plans from statistics, found the patient's rows already; it walks them in
order now instead of sorting them.

On PostgreSQL the index is built ``CONCURRENTLY``, outside the upgrade's transaction, so that the
running release goes on writing prescriptions while it builds (docs/operations.md, "Migrating
with several instances running"). A build that is interrupted leaves an invalid index of that
name, which the next upgrade stops on: drop it (``DROP INDEX CONCURRENTLY
ix_rv_current_patient_created``) and upgrade again.

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NAME = "ix_rv_current_patient_created"


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            _NAME,
            "resource_versions",
            ["resource_type", "is_current", "patient_hmac", "created_at", "logical_id"],
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(_NAME, table_name="resource_versions", postgresql_concurrently=True)
