"""The only writer of AuditEvents (docs/architecture.md 8, domain SEC-5, SEC-9, CO-12.6).

``record(session, keyring, AuditRecord(...))`` records one event in the caller's transaction: the
change and the event that records it commit together or not at all. Call it **last** in the
transaction, after the change. In a request answered through ``gateway.audit.group`` (the
default with PostgreSQL), the event is stored in ``audit_pending`` and the process's group writer
chains it, with other requests' events, after the commit and before the answer: the request takes
no chain lock. Elsewhere (SQLite by default, ``GATEWAY_AUDIT_GROUP_COMMIT=false``, scripts) it is
chained at once, and the chain lock is held until the commit.

A refusal is the exception: the request's transaction rolls back, so the denial must be written in
a transaction of its own. Raise ``AccessDenied(record)`` (a ``Forbidden``): the FHIR error
handler (``gateway.audit.refusals``) writes it with ``record_denied`` once the request's session
has rolled back, and answers 403 with the reason code. ``record_denied(sessions, keyring,
record)`` hands it to the group writer's next batch (or opens a transaction of its own) and
returns once it is chained; it may also be called directly, but never while a session of the
caller holds the database (SQLite would wait on itself; PostgreSQL could wait on its own chain
lock); a ``Forbidden`` raised after it in the same request is then not audited twice.

The chain: each row stores ``seq`` (1, 2, 3, ...), ``prev_hash`` (the previous row's hash, or
``GENESIS``) and ``hash`` = SHA-256 over a canonical encoding of its columns (``link_hash``),
the SHA-256 of the encrypted body included, and ``prev_hash``. Appends (``chain``: a request's,
or a group writer's batch) are serialised across gateway instances on the one-row
``audit_chain_head`` table: ``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite every transaction
already holds the single write lock (``gateway.db``, ``BEGIN IMMEDIATE``). An insert trigger
(migration 0003) moves the head to the new row. ``gateway.audit.chain`` verifies it.

No SSIN is stored in clear: the patient column is the keyed HMAC ``Keyring.search_hash("ssin",
...)``; the clear SSIN (patient, or patient actor) lives only in the encrypted FHIR body.

Whose log an event is in (``filed_under``): the patient the data is about, except when the actor
is a patient: then it is that patient's own log, always. A patient is only ever permitted his own
data, so this changes where his *refused* probes of another person's data go: into his log, not
the target's (SEC-6: a patient's log shows only him; otherwise the target would read the prober's
SSIN, and could be flooded). The target stays in the encrypted body (``entity`` role Patient)
for the operator; the patient's view drops every SSIN but his own (``patient_view``).

An act for someone else (RX-16, PO-3: reason ``permit-mandate`` or ``permit-parent``, a patient
actor) is filed under the person it was done for, the mandator, whose log shows who acted for him:
he gave that holder the mandate (or is his child), so both SSINs stay in his view. A copy, tagged
``HOLDER_COPY``, is filed under the holder, whose log shows what he did and for whom.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from weakref import WeakKeyDictionary

import orjson
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.auth.identity import Principal
from gateway.errors import Conflict, Forbidden
from gateway.storage.crypto import Keyring, associated_data
from gateway.storage.direct import DirectStatement
from gateway.storage.tables import audit_chain_head, audit_events, audit_pending

GENESIS: Final = "0" * 64
HEAD_ID: Final = 1
RESOURCE_TYPE: Final = "AuditEvent"

SSIN_SYSTEM: Final = "https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/ssin"
NIHDI_PROFESSIONAL: Final = (
    "https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/nihdi-professional"
)
NIHDI_ORGANIZATION: Final = (
    "https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/nihdi-organization"
)
CLIENT_SYSTEM: Final = "urn:ehealth-gateway:client-id"
ROLE_SYSTEM: Final = "urn:ehealth-gateway:role"
REASON_SYSTEM: Final = "urn:ehealth-gateway:access-reason"
REQUEST_ID_SYSTEM: Final = "urn:ehealth-gateway:request-id"

ACTIONS: Final = frozenset({"read", "search", "create", "update", "operation", "delete"})
OUTCOMES: Final = frozenset({"permit", "deny", "error"})

# FHIR R4 AuditEvent.action (C R U D E) and the restful-interaction subtype of each action.
_FHIR_ACTION: Final = {
    "create": "C",
    "read": "R",
    "search": "R",
    "update": "U",
    "delete": "D",
    "operation": "E",
}
_INTERACTION: Final = {
    "create": "create",
    "read": "read",
    "search": "search-type",
    "update": "update",
    "delete": "delete",
    "operation": "operation",
}
# FHIR R4 AuditEvent.outcome: 0 success, 4 minor failure (a refusal), 8 serious failure.
_FHIR_OUTCOME: Final = {"permit": "0", "deny": "4", "error": "8"}

# Set by ``record_denied`` for the rest of the request: ``gateway.audit.refusals`` then does not
# audit the ``Forbidden`` that follows a second time.
_DENIAL_RECORDED: ContextVar[bool] = ContextVar("audit_denial_recorded", default=False)

# Search parameters whose values name the patient: never written, even encrypted (SSIN, SEC-5).
_PATIENT_PARAMS: Final = frozenset(
    {"patient", "patient:identifier", "subject", "subject:identifier"}
)


@dataclass(frozen=True)
class AuditRecord:
    """One event: who (``actor``) did what (``action`` on ``resource_type``/``resource_id``
    about ``patient_ssin``) with which ``outcome`` and ``reason``, and how (``request_id``)."""

    action: str  # "read" | "search" | "create" | "update" | "operation" | "delete"
    outcome: str  # "permit" | "deny" | "error"
    reason: str  # consent.Reason value or a short code, e.g. "permit-author", "no-consent"
    resource_type: str
    resource_id: str | None
    patient_ssin: str | None  # stored as the keyed HMAC; the clear SSIN only in the encrypted body
    actor: Principal
    request_id: str | None
    query: str | None = None  # the search parameters WITHOUT SSIN values (see ``safe_query``)
    software: str | None = None  # the client software (User-Agent), when known


class AccessDenied(Forbidden):
    """A refusal to be audited: 403 whose message is the reason code, never health data (docs/architecture.md
    5). ``gateway.audit.refusals`` writes ``record`` in its own transaction."""

    def __init__(self, record: AuditRecord) -> None:
        super().__init__(record.reason)
        self.record = record


class RefusedChange(Conflict):
    """A permitted caller asked for a change the record's state forbids (RX-7: a second dispense,
    revoking a delivered prescription, an undo out of its window): 409 with ``message``, audited
    like a denial (docs/architecture.md 6, 8) in its own transaction by ``gateway.audit.refusals``."""

    def __init__(self, record: AuditRecord, message: str, *, expression: str | None = None) -> None:
        super().__init__(message, expression=expression)
        self.record = record


def safe_query(params: Iterable[tuple[str, str]] | Mapping[str, str]) -> str:
    """The query string with the values of patient parameters replaced by ``*`` (no SSIN)."""
    items = params.items() if isinstance(params, Mapping) else params
    parts = []
    for name, value in items:
        parts.append(f"{name}=*" if name in _PATIENT_PARAMS else f"{name}={value}")
    return "&".join(parts)[:2000]


@dataclass(frozen=True)
class Link:
    """The columns of one audit row that the chain covers (``link_hash``)."""

    seq: int
    event_id: str
    recorded_at: datetime
    action: str
    outcome: str
    reason: str
    resource_type: str
    resource_id: str | None
    patient_hmac: str | None
    client_id: str
    role: str
    actor_nihdi: str | None
    request_id: str | None
    key_id: str
    body: bytes
    prev_hash: str


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH: Final = datetime(1970, 1, 1)
_MICROSECOND: Final = timedelta(microseconds=1)


def _instant(value: datetime) -> int:
    """Microseconds since the epoch, UTC: the same from SQLite (naive) and PostgreSQL (aware)."""
    return (value - (_NAIVE_EPOCH if value.tzinfo is None else _EPOCH)) // _MICROSECOND


def link_hash(link: Link) -> str:
    """SHA-256 over a canonical encoding (a JSON array in a fixed order) of ``link``."""
    return columns_hash(
        link.seq,
        link.event_id,
        link.recorded_at,
        link.action,
        link.outcome,
        link.reason,
        link.resource_type,
        link.resource_id,
        link.patient_hmac,
        link.client_id,
        link.role,
        link.actor_nihdi,
        link.request_id,
        link.key_id,
        link.body,
        link.prev_hash,
    )


def columns_hash(
    seq: int,
    event_id: str,
    recorded_at: datetime,
    action: str,
    outcome: str,
    reason: str,
    resource_type: str,
    resource_id: str | None,
    patient_hmac: str | None,
    client_id: str,
    role: str,
    actor_nihdi: str | None,
    request_id: str | None,
    key_id: str,
    body: bytes,
    prev_hash: str,
) -> str:
    """``link_hash`` of a row's columns in ``Link``'s order (``gateway audit verify`` reads them
    so, without building a ``Link`` per row)."""
    canonical = orjson.dumps(
        [
            "ehealth-gateway/audit/v1",
            seq,
            event_id,
            _instant(recorded_at),
            action,
            outcome,
            reason,
            resource_type,
            resource_id,
            patient_hmac,
            client_id,
            role,
            actor_nihdi,
            request_id,
            key_id,
            hashlib.sha256(body).hexdigest(),
            prev_hash,
        ]
    )
    return hashlib.sha256(canonical).hexdigest()


def _agent(actor: Principal) -> dict[str, Any]:
    agent: dict[str, Any] = {
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type",
                    "code": "humanuser" if actor.role == "patient" else "dataprocessor",
                }
            ]
        },
        "role": [{"coding": [{"system": ROLE_SYSTEM, "code": actor.role}]}],
        "altId": actor.client_id,
        "requestor": True,
    }
    if actor.nihdi:
        system = NIHDI_ORGANIZATION if actor.role == "pharmacist" else NIHDI_PROFESSIONAL
        agent["who"] = {"identifier": {"system": system, "value": actor.nihdi}}
    elif actor.ssin:
        agent["who"] = {"identifier": {"system": SSIN_SYSTEM, "value": actor.ssin}}
    else:
        agent["who"] = {"identifier": {"system": CLIENT_SYSTEM, "value": actor.client_id}}
    return agent


def audit_event_json(record: AuditRecord, event_id: str, recorded_at: datetime) -> dict[str, Any]:
    """The FHIR R4 AuditEvent for ``record`` (stored encrypted; returned by GET /fhir/AuditEvent)."""
    what: dict[str, Any] = {"type": record.resource_type}
    if record.resource_id:
        what["reference"] = f"{record.resource_type}/{record.resource_id}"
    entity: dict[str, Any] = {
        "what": what,
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
            "code": "2",
            "display": "System Object",
        },
        "detail": [],
    }
    if record.request_id:
        entity["detail"].append({"type": "request-id", "valueString": record.request_id})
    if record.software:
        entity["detail"].append({"type": "client-software", "valueString": record.software[:200]})
    if record.query:
        entity["query"] = base64.b64encode(record.query.encode()).decode()
    if not entity["detail"]:
        del entity["detail"]
    entities = [entity]
    if record.patient_ssin:
        entities.append(
            {
                "what": {"identifier": {"system": SSIN_SYSTEM, "value": record.patient_ssin}},
                "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "1",
                    "display": "Person",
                },
                "role": {
                    "system": "http://terminology.hl7.org/CodeSystem/object-role",
                    "code": "1",
                    "display": "Patient",
                },
            }
        )
    return {
        "resourceType": RESOURCE_TYPE,
        "id": event_id,
        "meta": {
            "versionId": "1",
            "lastUpdated": recorded_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        },
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
            "display": "RESTful Operation",
        },
        "subtype": [
            {
                "system": "http://hl7.org/fhir/restful-interaction",
                "code": _INTERACTION[record.action],
            }
        ],
        "action": _FHIR_ACTION[record.action],
        "recorded": recorded_at.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "outcome": _FHIR_OUTCOME[record.outcome],
        "outcomeDesc": record.reason,
        "purposeOfEvent": [{"coding": [{"system": REASON_SYSTEM, "code": record.reason}]}],
        "agent": [_agent(record.actor)],
        "source": {
            "site": "ehealth-gateway",
            "observer": {"display": "ehealth-gateway"},
            "type": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                    "code": "4",
                    "display": "Application Server",
                }
            ],
        },
        "entity": entities,
    }


# RX-16, PO-3: the reasons of a patient's permitted act for another person (consent.Reason).
ACTING_FOR: Final = frozenset({"permit-mandate", "permit-parent"})
# The copy of such an act filed under the holder (module docstring), a meta.tag of its body.
HOLDER_COPY: Final = {"system": "urn:ehealth-gateway:audit-copy", "code": "holder"}


def _acts_for_another(record: AuditRecord) -> bool:
    return (
        record.actor.role == "patient"
        and record.reason in ACTING_FOR
        and record.patient_ssin is not None
        and record.patient_ssin != record.actor.ssin
    )


def filed_under(record: AuditRecord) -> str | None:
    """The SSIN whose log holds ``record`` (module docstring): a patient actor's own, unless he
    acted for another person (the mandator's), else the patient the data is about."""
    if _acts_for_another(record):
        return record.patient_ssin
    if record.actor.role == "patient" and record.actor.ssin:
        return record.actor.ssin
    return record.patient_ssin


def _ssin_of(reference: Any) -> str | None:
    """The SSIN a FHIR ``Reference`` (``agent.who``, ``entity.what``) names by identifier."""
    identifier = reference.get("identifier") if isinstance(reference, dict) else None
    if isinstance(identifier, dict) and identifier.get("system") == SSIN_SYSTEM:
        value = identifier.get("value")
        return value if isinstance(value, str) else None
    return None


def filed_under_json(event: Mapping[str, Any]) -> str | None:
    """``filed_under`` read back from a stored AuditEvent: the SSIN of a patient agent, else the
    patient entity's; an act for another person is the mandator's, its holder's copy the holder's."""
    tags = (event.get("meta") or {}).get("tag") or ()
    acting_for = event.get("outcomeDesc") in ACTING_FOR and HOLDER_COPY not in tags
    for entity in event.get("entity") or () if acting_for else ():
        ssin = _ssin_of(entity.get("what"))
        if ssin:
            return ssin
    for agent in event.get("agent") or ():
        roles = [c.get("code") for r in agent.get("role") or () for c in r.get("coding") or ()]
        ssin = _ssin_of(agent.get("who"))
        if "patient" in roles and ssin:
            return ssin
    for entity in event.get("entity") or ():
        ssin = _ssin_of(entity.get("what"))
        if ssin:
            return ssin
    return None


def patient_view(event: Mapping[str, Any], ssin: str) -> dict[str, Any]:
    """The AuditEvent as patient ``ssin`` may see it: no other person's SSIN anywhere (SEC-6).
    Drops the entity naming another patient (the target of his own refused probe) and the
    identifier of an agent who is another patient (events filed before ``filed_under``). An act
    under a mandate or as a parent shows both the holder and the mandator (module docstring)."""
    if event.get("outcomeDesc") in ACTING_FOR:
        return dict(event)
    shown = dict(event)
    shown["entity"] = [
        e for e in event.get("entity") or () if _ssin_of(e.get("what")) in (None, ssin)
    ]
    agents = []
    for agent in event.get("agent") or ():
        if _ssin_of(agent.get("who")) not in (None, ssin):
            agent = {k: v for k, v in agent.items() if k != "who"}
        agents.append(agent)
    shown["agent"] = agents
    return shown


def _check(record: AuditRecord) -> None:
    if record.action not in ACTIONS:
        raise ValueError(f"unknown audit action {record.action!r}")
    if record.outcome not in OUTCOMES:
        raise ValueError(f"unknown audit outcome {record.outcome!r}")


# Every audited request runs these (gateway.storage.direct: on the driver's connection). The
# head is locked on PostgreSQL (FOR UPDATE); SQLite has one writer at a time.
_SELECT_HEAD: Final = select(audit_chain_head.c.seq, audit_chain_head.c.hash).where(
    audit_chain_head.c.id == HEAD_ID
)
_HEAD: Final = DirectStatement(_SELECT_HEAD, postgresql=_SELECT_HEAD.with_for_update())
_INSERT_EVENT: Final = DirectStatement(audit_events.insert())
_INSERT_PENDING: Final = DirectStatement(audit_pending.insert())


# Set by ``gateway.audit.group`` for the request it answers: ``record`` then stores the events as
# pending entries in the request's transaction and adds their ids here, and the group writer chains
# them once that transaction has committed, before the answer is sent. Unset (a script, a test, or
# group commit off): ``record`` chains in the caller's transaction.
class Pending(list[str]):
    """The ids of the events a request recorded; ``closed`` once its answer has started, so that
    a task the request started (which inherits the context) chains its own events itself."""

    closed = False


PENDING: ContextVar[Pending | None] = ContextVar("audit_pending", default=None)

# The group writer of a session factory (``gateway.audit.group.GroupWriter.commit``), when one runs:
# ``record_denied`` hands it the entries instead of opening a transaction of its own.
Submit = Callable[[Sequence[str], Sequence[dict[str, Any]]], Awaitable[None]]
GROUP_WRITERS: WeakKeyDictionary[async_sessionmaker[AsyncSession], Submit] = WeakKeyDictionary()


async def _head(session: AsyncSession) -> tuple[int, str]:
    """The chain head, locked for this transaction (created on first use)."""
    rows = await _HEAD.execute(session, {})
    if not rows:
        postgres = (await session.connection()).dialect.name == "postgresql"
        insert = (postgresql.insert if postgres else sqlite.insert)(audit_chain_head)
        await session.execute(
            insert.values(id=HEAD_ID, seq=0, hash=GENESIS).on_conflict_do_nothing()
        )
        rows = await _HEAD.execute(session, {})
    return int(rows[0].seq), str(rows[0].hash)


async def record(session: AsyncSession, keyring: Keyring, *records: AuditRecord) -> None:
    """Record ``records`` in ``session``'s transaction: they commit with the change or not at all.
    Chained there and then, or, in a request answered through ``gateway.audit.group``, stored as
    pending entries that the group writer chains after the commit and before the answer."""
    rows = entries(keyring, *records)
    pending = PENDING.get()
    if pending is None or pending.closed:
        await chain(session, rows)
        return
    await _INSERT_PENDING.execute_each(session, rows)
    pending.extend(row["event_id"] for row in rows)


async def record_denied(
    sessions: async_sessionmaker[AsyncSession], keyring: Keyring, record: AuditRecord
) -> None:
    """Append ``record`` in a short transaction of its own (the request's has rolled back): the
    group writer's next batch when one runs for ``sessions``, else a transaction opened here."""
    rows = entries(keyring, record)
    submit = GROUP_WRITERS.get(sessions)
    if submit is not None:
        await submit((), rows)
    else:
        async with sessions() as session, session.begin():
            await chain(session, rows)
    _DENIAL_RECORDED.set(True)


def denial_recorded() -> bool:
    """Whether ``record_denied`` already wrote this request's refusal."""
    return _DENIAL_RECORDED.get()


def entries(keyring: Keyring, *records: AuditRecord) -> list[dict[str, Any]]:
    """The rows of ``records`` before they are chained: every column but ``seq``, ``prev_hash``
    and ``hash``; an act for another person gives two (module docstring)."""
    rows: list[dict[str, Any]] = []
    for record in records:
        _check(record)
        copies = (False, True) if _acts_for_another(record) else (False,)
        rows.extend(_entry(keyring, record, holder_copy=copy) for copy in copies)
    return rows


async def chain(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Append ``rows`` (``entries``) in order: one read of the locked head, one insert of all links.
    The lock on the head is held until ``session`` commits."""
    if not rows:
        return
    seq, prev_hash = await _head(session)
    links = []
    for row in rows:
        seq += 1
        link = Link(seq=seq, prev_hash=prev_hash, **row)
        prev_hash = link_hash(link)
        links.append({**row, "seq": seq, "prev_hash": link.prev_hash, "hash": prev_hash})
    # The insert trigger of migration 0003 moves audit_chain_head to each row's (seq, hash).
    await _INSERT_EVENT.execute_each(session, links)


def _entry(keyring: Keyring, record: AuditRecord, *, holder_copy: bool) -> dict[str, Any]:
    """The unchained row of ``record``; the body encrypted. The ``holder_copy`` of an act for
    another person is filed under the holder (module docstring)."""
    event_id = uuid.uuid4().hex
    recorded_at = datetime.now(UTC)
    event = audit_event_json(record, event_id, recorded_at)
    subject = filed_under(record)
    if holder_copy:
        event["meta"]["tag"] = [HOLDER_COPY]
        subject = record.actor.ssin
    body = orjson.dumps(event)
    return {
        "event_id": event_id,
        "recorded_at": recorded_at,
        "action": record.action,
        "outcome": record.outcome,
        "reason": record.reason[:64],
        "resource_type": record.resource_type[:64],
        "resource_id": record.resource_id[:64] if record.resource_id else None,
        "patient_hmac": keyring.search_hash("ssin", subject) if subject else None,
        "client_id": record.actor.client_id,
        "role": record.actor.role,
        "actor_nihdi": record.actor.nihdi,
        "request_id": record.request_id[:128] if record.request_id else None,
        "key_id": keyring.key_id,
        "body": keyring.encrypt(body, associated_data(RESOURCE_TYPE, event_id, 1)),
    }
