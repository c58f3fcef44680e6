"""eAttest claims: delivery bookkeeping, the outbox to the funds, settlement cursors and events.

The Claim and ClaimResponse bodies are resources (``resource_versions``); these tables hold no
health data in clear (``gateway.storage.tables``, docs/claims.md).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "claims",
        sa.Column("claim_id", sa.String(64), primary_key=True),
        sa.Column("provider_nihdi", sa.String(16), nullable=False),
        sa.Column("request_key", sa.String(64), nullable=False),
        sa.Column("fund_code", sa.String(3), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("attestation", sa.String(64), nullable=True),
        sa.Column("response_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_claims_provider_state", "claims", ["provider_nihdi", "state"])
    op.create_index("uq_claims_request_key", "claims", ["request_key"], unique=True)
    op.create_table(
        "claim_services",
        sa.Column("claim_id", sa.String(64), primary_key=True),
        sa.Column("service_hmac", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_claim_services_hmac", "claim_services", ["service_hmac", "created_at"])
    op.create_table(
        "claim_jobs",
        sa.Column("job_id", sa.String(32), primary_key=True),
        sa.Column("claim_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("fund_code", sa.String(3), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_token", sa.String(32), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.String(1), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("last_error", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("uq_claim_jobs_claim_kind", "claim_jobs", ["claim_id", "kind"], unique=True)
    op.create_index("ix_claim_jobs_due", "claim_jobs", ["state", "fund_code", "next_attempt_at"])
    op.create_table(
        "fund_cursors",
        sa.Column("fund_code", sa.String(3), primary_key=True),
        sa.Column("cursor", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "fund_events",
        sa.Column("fund_code", sa.String(3), primary_key=True),
        sa.Column("event_id", sa.String(128), primary_key=True),
        sa.Column("claim_id", sa.String(64), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("fund_events")
    op.drop_table("fund_cursors")
    op.drop_table("claim_jobs")
    op.drop_table("claim_services")
    op.drop_table("claims")
