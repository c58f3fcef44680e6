"""Table definitions (SQLAlchemy Core). Alembic migrations under ``gateway/migrations`` create them.

``resource_versions`` keeps every version of every resource: the body encrypted (AES-GCM), plus the
columns that searches need. Search columns never hold an SSIN in clear: ``patient_hmac`` is a keyed
HMAC, and business identifiers (RID, the prescriber's own ids) live in ``resource_identifiers`` as
HMACs too, unique per resource type so that a retried conditional create cannot make a duplicate.

``oauth_clients`` is the client registry and ``signing_keys`` the access-token signing keys
(``gateway/auth``, migration 0002); a signing key's private half is encrypted at rest like bodies.

Every instant is a ``UtcDateTime``: stored, indexed and compared as UTC on SQLite and PostgreSQL
(``gateway.storage.types``); a naive datetime is refused before it reaches the database.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)

from gateway.storage.types import UtcDateTime

metadata = MetaData()

_ACTIVE_DISPENSE = "resource_type = 'MedicationDispense' AND is_current AND status = 'completed'"

resource_versions = Table(
    "resource_versions",
    metadata,
    Column("resource_type", String(64), primary_key=True),
    Column("logical_id", String(64), primary_key=True),
    Column("version_id", Integer, primary_key=True, autoincrement=False),
    Column("is_current", Boolean, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("last_updated", UtcDateTime(), nullable=False),
    # time of version 1, copied to every version: the stable sort key for keyset paging
    Column("created_at", UtcDateTime(), nullable=False),
    Column("key_id", String(16), nullable=False),
    Column("body", LargeBinary, nullable=False),
    # search columns (current version only is searched)
    Column("patient_hmac", String(64), nullable=True),
    Column("status", String(32), nullable=True),
    Column("authored_on", UtcDateTime(), nullable=True),
    Column("author_nihdi", String(16), nullable=True),
    # migration 0003 (docs/architecture.md 4c, 5): what the access decision and its SQL filter read.
    # period: a prescription's validity (RX-7 expiry is computed from its end), a relationship's
    # start and legal end (CO-6), a consent's start.
    Column("period_start", UtcDateTime(), nullable=True),
    Column("period_end", UtcDateTime(), nullable=True),
    Column("category", String(32), nullable=True),  # Consent: informed-consent | exclusion | ...
    Column("actor_nihdi", String(16), nullable=True),  # Consent: the provider its provision names
    Column("kind", String(32), nullable=True),  # relationship kind (urn:...:relationship-kind)
    Column("pharmacy_visibility", String(8), nullable=True),  # RX-13: all | one | none (NULL: all)
    Column("visible_pharmacy", String(16), nullable=True),  # RX-13: the one pharmacy
    Column("prescriber_visibility", String(8), nullable=True),  # RX-14: open | closed (NULL: open)
    # migration 0005 (RX-7, RX-25): a dispense's prescription (logical id); the pharmacy (organisation
    # NIHDI) holding a prescription in process or having delivered it.
    Column("based_on", String(64), nullable=True),
    Column("holder_nihdi", String(16), nullable=True),
    Column("lifecycle", String(16), nullable=True),  # RX-6 state where the status does not tell it
    # migration 0010 (RX-16): a proxy mandate's holder, the keyed HMAC of his SSIN
    Column("holder_hmac", String(64), nullable=True),
    # migration 0012 (issue 18): a patient's rows in date order (it replaced the index on the
    # first three columns only)
    Index(
        "ix_rv_current_patient_authored",
        "resource_type",
        "is_current",
        "patient_hmac",
        "authored_on",
    ),
    # migration 0014 (issue 18): the same newest first (the default sort), with its tie-break
    Index(
        "ix_rv_current_patient_created",
        "resource_type",
        "is_current",
        "patient_hmac",
        "created_at",
        "logical_id",
    ),
    Index("ix_rv_current_authored", "resource_type", "is_current", "authored_on"),
    Index("ix_rv_current_created", "resource_type", "is_current", "created_at", "logical_id"),
    Index("ix_rv_current_actor", "resource_type", "is_current", "actor_nihdi"),
    Index("ix_rv_current_based_on", "resource_type", "is_current", "based_on"),
    Index("ix_rv_current_holder", "resource_type", "is_current", "holder_hmac"),
    # one active dispense per prescription, whatever the code path (migration 0005)
    Index(
        "uq_rv_active_dispense",
        "based_on",
        unique=True,
        postgresql_where=text(_ACTIVE_DISPENSE),
        sqlite_where=text(_ACTIVE_DISPENSE),
    ),
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
    Column("cert_not_after", UtcDateTime(), nullable=False),
    Column("status", String(16), nullable=False),  # active | revoked
    Column("created_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
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
    Column("created_at", UtcDateTime(), nullable=False),
    Column("retired_at", UtcDateTime(), nullable=True),
    Column("revoked_at", UtcDateTime(), nullable=True),
)


# -- audit (gateway/audit, migration 0003) -----------------------------------------------------------
def _audit_entry_columns() -> list[Column[object]]:
    """What an event records, before the chain gives it ``seq``, ``prev_hash`` and ``hash``."""
    return [
        Column("event_id", String(64), nullable=False, unique=True),
        Column("recorded_at", UtcDateTime(), nullable=False),
        Column("action", String(16), nullable=False),
        Column("outcome", String(16), nullable=False),
        Column("reason", String(64), nullable=False),
        Column("resource_type", String(64), nullable=False),
        Column("resource_id", String(64), nullable=True),
        Column("patient_hmac", String(64), nullable=True),
        Column("client_id", String(64), nullable=False),
        Column("role", String(16), nullable=False),
        Column("actor_nihdi", String(16), nullable=True),
        Column("request_id", String(128), nullable=True),
        Column("key_id", String(16), nullable=False),
        Column("body", LargeBinary, nullable=False),
    ]


# Append-only and hash-chained (docs/architecture.md 8, SEC-5, SEC-9): ``gateway.audit.writer`` is the only
# code that inserts, nothing updates or deletes (database triggers refuse it), and
# ``gateway audit verify`` walks the chain. The body (a FHIR AuditEvent) is encrypted like resource
# bodies; the columns hold what the patient's access log search needs, the SSIN as a keyed HMAC.
audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    *_audit_entry_columns(),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_patient_recorded", "patient_hmac", "recorded_at", "seq"),
)

# One row (id 1): the newest link. Appending locks it (PostgreSQL ``FOR UPDATE``; SQLite has one
# writer at a time), so concurrent gateway instances append one after the other.
audit_chain_head = Table(
    "audit_chain_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

# Events recorded in a change's transaction and not yet chained (migration 0013): the group writer
# (``gateway.audit.group``) moves them into ``audit_events`` once that transaction has committed,
# milliseconds later, before the request is answered. ``id`` keeps the order they were recorded in.
audit_pending = Table(
    "audit_pending",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    *_audit_entry_columns(),
)

# -- eAttest claims (gateway/claims, migration 0004) -------------------------------------------------
# The Claim and the fund's ClaimResponse are resources (``resource_versions``, encrypted). These
# tables hold the delivery bookkeeping, with no health data in clear: one row per claim (its state,
# for operators and the duplicate rule), the services for the AT-7 duplicate window (keyed HMAC of
# provider, patient, date, code, count), the outbox of deliveries to the funds, and per fund the
# settlement feed's cursor and the events already applied.
claims = Table(
    "claims",
    metadata,
    Column("claim_id", String(64), primary_key=True),  # the Claim's logical id
    Column("provider_nihdi", String(16), nullable=False),
    # the provider's request key (AT-7) as the store's identifier hash: replays are found here
    Column("request_key", String(64), nullable=False),
    Column("fund_code", String(3), nullable=False),
    # queued | delivered | settled | refused | failed | cancelled (gateway.claims.model.State)
    Column("state", String(16), nullable=False),
    # keyed HMAC of the claim's content: a replayed request key with other content is refused
    Column("fingerprint", String(64), nullable=False),
    Column("attestation", String(64), nullable=True),  # the fund's number once acknowledged (AT-4)
    Column("response_id", String(64), nullable=True),  # its ClaimResponse, once the fund answered
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_claims_provider_state", "provider_nihdi", "state"),
    Index("uq_claims_request_key", "request_key", unique=True),
)

claim_services = Table(
    "claim_services",
    metadata,
    Column("claim_id", String(64), primary_key=True),
    Column("service_hmac", String(64), primary_key=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Index("ix_claim_services_hmac", "service_hmac", "created_at"),
)

# The outbox: written in the transaction that stores the claim, taken by the forwarder.
claim_jobs = Table(
    "claim_jobs",
    metadata,
    Column("job_id", String(32), primary_key=True),
    Column("claim_id", String(64), nullable=False),
    Column("kind", String(8), nullable=False),  # submit | cancel
    Column("fund_code", String(3), nullable=False),
    Column("state", String(16), nullable=False),  # pending | done | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    # the lease of the worker sending it now: a token, and when another worker may take over
    Column("lease_token", String(32), nullable=True),
    Column("locked_until", UtcDateTime(), nullable=True),
    Column("cancel_reason", String(1), nullable=True),  # AT-6, cancel jobs only
    Column("outcome", String(16), nullable=True),
    Column("last_error", String(200), nullable=True),  # a reason code and a short text, no data
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=True),
    Index("uq_claim_jobs_claim_kind", "claim_id", "kind", unique=True),
    Index("ix_claim_jobs_due", "state", "fund_code", "next_attempt_at"),
)

fund_cursors = Table(
    "fund_cursors",
    metadata,
    Column("fund_code", String(3), primary_key=True),
    Column("cursor", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

fund_events = Table(
    "fund_events",
    metadata,
    Column("fund_code", String(3), primary_key=True),
    Column("event_id", String(128), primary_key=True),  # the event's ClaimResponse id
    Column("claim_id", String(64), nullable=True),  # None: not one of ours
    Column("applied_at", UtcDateTime(), nullable=False),
)

# -- patient accounts (gateway/auth/accounts.py, migration 0006) -------------------------------------
# The gateway's own login page stands in for the national identity service (FAS/CSAM, PO-1): one
# row per patient who may log in, the SSIN only as a keyed HMAC, the password as a scrypt hash
# (parameters and salt inside the string), and the brute-force counters.
patient_accounts = Table(
    "patient_accounts",
    metadata,
    Column("ssin_hmac", String(64), primary_key=True),
    Column("password_hash", String(255), nullable=False),
    # No lockout columns (migration 0008): login throttling is per (account, address) in the
    # key-value store, gateway/auth/throttle.py.
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("last_login_at", UtcDateTime(), nullable=True),
)

# -- GMF practices (gateway/storage/practices.py, migration 0009) ------------------------------------
# Reference data for RX-14: which general practitioners share a GMF practice, from when. A member
# is a person (ID-7: the first eight digits of his NIHDI number); an ended membership keeps its
# row with ``until`` (exclusive). No patient data.
gmf_practices = Table(
    "gmf_practices",
    metadata,
    Column("practice_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

gmf_members = Table(
    "gmf_members",
    metadata,
    Column("practice_id", String(64), ForeignKey("gmf_practices.practice_id"), primary_key=True),
    Column("person", String(8), primary_key=True),
    Column("since", UtcDateTime(), primary_key=True),
    Column("nihdi", String(16), nullable=False),  # as the operator gave it
    Column("until", UtcDateTime(), nullable=True),
    Index("ix_gmf_members_person", "person", "practice_id"),
)


# PO-3: who is a parent of whom (National Register household data, kept by the operator:
# ``gateway family``). Both people are keyed hashes of their SSIN, as every patient column is.
family_links = Table(
    "family_links",
    metadata,
    Column("child_hmac", String(64), primary_key=True),
    Column("parent_hmac", String(64), primary_key=True),
    Column("since", UtcDateTime(), primary_key=True),
    Column("until", UtcDateTime(), nullable=True),  # exclusive; None: still linked
)
