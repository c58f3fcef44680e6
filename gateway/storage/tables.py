"""Table definitions (SQLAlchemy Core). Alembic migrations under ``gateway/migrations`` create them.

``resource_versions`` keeps every version of every resource: the body encrypted (AES-GCM), plus the
columns that searches need. Search columns never hold an SSIN in clear: ``patient_hmac`` is a keyed
HMAC, and business identifiers (RID, the prescriber's own ids) live in ``resource_identifiers`` as
HMACs too, unique per resource type so that a retried conditional create cannot make a duplicate.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
)

metadata = MetaData()

resource_versions = Table(
    "resource_versions",
    metadata,
    Column("resource_type", String(64), primary_key=True),
    Column("logical_id", String(64), primary_key=True),
    Column("version_id", Integer, primary_key=True, autoincrement=False),
    Column("is_current", Boolean, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("last_updated", DateTime(timezone=True), nullable=False),
    # time of version 1, copied to every version: the stable sort key for keyset paging
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("key_id", String(16), nullable=False),
    Column("body", LargeBinary, nullable=False),
    # search columns (current version only is searched)
    Column("patient_hmac", String(64), nullable=True),
    Column("status", String(32), nullable=True),
    Column("authored_on", DateTime(timezone=True), nullable=True),
    Column("author_nihdi", String(16), nullable=True),
    Index("ix_rv_current_patient", "resource_type", "is_current", "patient_hmac"),
    Index("ix_rv_current_authored", "resource_type", "is_current", "authored_on"),
    Index("ix_rv_current_created", "resource_type", "is_current", "created_at", "logical_id"),
)

resource_identifiers = Table(
    "resource_identifiers",
    metadata,
    Column("resource_type", String(64), primary_key=True),
    Column("token_hmac", String(64), primary_key=True),
    Column("logical_id", String(64), nullable=False),
    Index("ix_ri_resource", "resource_type", "logical_id"),
)
