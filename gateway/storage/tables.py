"""Table definitions (SQLAlchemy Core). Alembic migrations under ``gateway/migrations`` create them.

``resource_versions`` keeps every version of every resource: the body encrypted (AES-GCM), plus the
columns that searches need. Search columns never hold an SSIN in clear: ``patient_hmac`` is a keyed
HMAC, and business identifiers (RID, the prescriber's own ids) live in ``resource_identifiers`` as
HMACs too, unique per resource type so that a retried conditional create cannot make a duplicate.

``oauth_clients`` is the client registry and ``signing_keys`` the access-token signing keys
(``gateway/auth``, migration 0002); a signing key's private half is encrypted at rest like bodies.
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
    Text,
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

oauth_clients = Table(
    "oauth_clients",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("nihdi", String(16), nullable=True),
    Column("qualification", String(64), nullable=True),
    Column("name", String(200), nullable=False),
    Column("organisation", String(200), nullable=True),
    Column("cert_pem", Text, nullable=False),
    # SHA-256 of the DER certificate and of its public key (hex)
    Column("cert_sha256", String(64), nullable=False, unique=True),
    Column("spki_sha256", String(64), nullable=False),
    Column("cert_not_after", DateTime(timezone=True), nullable=False),
    Column("status", String(16), nullable=False),  # active | revoked
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("revocation_reason", String(200), nullable=True),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("alg", String(16), nullable=False),
    Column("public_jwk", Text, nullable=False),
    # PKCS#8 DER, AES-GCM under the Keyring; key_id names the master key that encrypted it
    Column("private_key", LargeBinary, nullable=False),
    Column("key_id", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("retired_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)
