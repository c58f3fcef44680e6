"""Dispensing (RX-6, RX-7, RX-25): the pharmacy holding a prescription, the dispense's prescription.

``resource_versions`` gains ``based_on`` (a MedicationDispense's prescription, by logical id:
``MedicationDispense?prescription=`` searches it), ``holder_nihdi`` (the organisation NIHDI of the
pharmacy that holds a prescription in process or delivered it: only that pharmacy may deliver an
in-process prescription or undo its delivery) and ``lifecycle`` (the gateway state of RX-6 where
the FHIR status does not tell it: in process is ``active``, archived is ``completed``; NULL means
the state follows from the status).

A partial unique index makes "one active dispense per prescription" a fact of the database, not
only of the compare-and-set on the prescription's version: whatever a future code path does, a
second current ``completed`` dispense for one prescription cannot be written.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ACTIVE_DISPENSE = sa.text(
    "resource_type = 'MedicationDispense' AND is_current AND status = 'completed'"
)


def upgrade() -> None:
    with op.batch_alter_table("resource_versions") as batch:
        batch.add_column(sa.Column("based_on", sa.String(64), nullable=True))
        batch.add_column(sa.Column("holder_nihdi", sa.String(16), nullable=True))
        batch.add_column(sa.Column("lifecycle", sa.String(16), nullable=True))
    op.create_index(
        "ix_rv_current_based_on", "resource_versions", ["resource_type", "is_current", "based_on"]
    )
    op.create_index(
        "uq_rv_active_dispense",
        "resource_versions",
        ["based_on"],
        unique=True,
        postgresql_where=_ACTIVE_DISPENSE,
        sqlite_where=_ACTIVE_DISPENSE,
    )


def downgrade() -> None:
    op.drop_index("uq_rv_active_dispense", table_name="resource_versions")
    op.drop_index("ix_rv_current_based_on", table_name="resource_versions")
    with op.batch_alter_table("resource_versions") as batch:
        batch.drop_column("lifecycle")
        batch.drop_column("holder_nihdi")
        batch.drop_column("based_on")
