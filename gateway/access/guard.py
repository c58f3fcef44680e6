"""The access-checked door to resources: decide, then act, then audit (docs/architecture.md 5, 8).

The store asks ``consent.decide``, filters searches and writes the audit event. A
``Guard`` wraps the request's ``ResourceStore`` with the caller and the request's facts (request
id, client software, the clock, an eID read shown in headers). Services ask it:

- ``decide(request, ssin)``: load the patient's facts (``gateway.access.facts``) and ask
  ``consent.decide``; any error while loading is ``Reason.ERROR`` (fail closed, docs/architecture.md 5);
- ``access(decision, event)``: an async context manager around the change. A denial raises
  ``AccessDenied`` before anything happens (``gateway.audit.refusals`` then writes it in its own
  transaction, the request's having rolled back); a permit runs the change and, when it
  succeeded, writes the AuditEvent last, in the same transaction (``gateway.audit.writer``:
  the chain lock is then held only until the commit).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn

import structlog
from fastapi import Request

from consent import (
    AccessPath,
    AccessRequest,
    Action,
    Actor,
    ByPresence,
    ByRelationship,
    Decision,
    PatientFacts,
    Reason,
    Resource,
    ResourceKind,
    Role,
    Visibility,
    decide,
)
from fhir_profiles.eid_card import CARD_NUMBER_TEXT, is_valid_card_number
from fhir_profiles.event_time import RANGE_TEXT, is_event_time
from gateway.access.facts import load_facts
from gateway.audit.writer import AccessDenied, AuditRecord, RefusedChange, record
from gateway.auth.identity import Principal
from gateway.errors import BadRequest
from gateway.ops import OUTAGES
from gateway.presence import NationalRegister, Verdict
from gateway.storage.records import utc_now
from gateway.storage.store import ResourceStore
from gateway.urls import fhir_base

Clock = Callable[[], datetime]
log = structlog.get_logger("gateway.access")

# RX-18 (b), CO-2: a provider shows the patient's presence on a request that carries no Consent
# body (a search, a read, an update) with these two headers: the eID card number and the time
# the card was read (ISO 8601 with a zone).
EID_CARD_HEADER = "x-eid-card-number"
EID_READ_AT_HEADER = "x-eid-read-at"
# PatientFacts for a record whose patient is pseudonymised (ID-21): nobody's facts, so only the
# author's own rights remain.
NO_PATIENT = "unknown-patient"
NO_MATCH = "no-match"  # the audit reason of a search by identifier that found nothing


def system_clock() -> datetime:
    return utc_now()


@dataclass(frozen=True)
class RequestInfo:
    """What the audit and the decision need to know about the HTTP request."""

    now: datetime
    request_id: str | None = None
    software: str | None = None  # User-Agent: the client software (SEC-5 HOW)
    presence: ByPresence | None = None
    # Asked whether an eID read proves the patient's presence (gateway.presence); None: not
    # configured, the card number's check digits are all that is checked.
    register: NationalRegister | None = None
    base: str | None = None  # this server's FHIR base URL, for references written absolute


def presence_from_headers(card: str | None, read_at: str | None) -> ByPresence | None:
    if card is None and read_at is None:
        return None
    if not card or not read_at:
        missing = "X-eID-Read-At" if card else "X-eID-Card-Number"
        raise BadRequest(
            "an eID read needs X-eID-Card-Number and X-eID-Read-At", expression=missing
        )
    card = card.strip()
    if not is_valid_card_number(card):  # checked before anyone is asked (fhir_profiles.eid_card)
        raise BadRequest(f"X-eID-Card-Number: {CARD_NUMBER_TEXT}", expression="X-eID-Card-Number")
    try:
        moment = datetime.fromisoformat(read_at.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequest(
            "X-eID-Read-At: not an ISO 8601 instant", expression="X-eID-Read-At"
        ) from exc
    if moment.tzinfo is None:
        raise BadRequest("X-eID-Read-At needs a time zone", expression="X-eID-Read-At")
    if not is_event_time(moment):  # year 0001 or 9999 cannot even be placed in UTC
        raise BadRequest(f"X-eID-Read-At: a time {RANGE_TEXT}", expression="X-eID-Read-At")
    return ByPresence(card, moment)


async def request_info(request: Request) -> RequestInfo:  # async: no thread-pool hop
    """A FastAPI dependency: the request's id, software, clock reading and eID read."""
    clock: Clock = request.app.state.clock
    headers = request.headers
    return RequestInfo(
        now=clock(),
        request_id=getattr(request.state, "request_id", None),
        software=(headers.get("user-agent") or "")[:200] or None,
        presence=presence_from_headers(
            headers.get(EID_CARD_HEADER), headers.get(EID_READ_AT_HEADER)
        ),
        register=getattr(request.app.state, "national_register", None),
        base=fhir_base(request),
    )


@dataclass
class Event:
    """What an AuditEvent says was done (the who and how come from the Guard)."""

    action: str  # writer.ACTIONS
    resource_type: str
    resource_id: str | None = None
    patient_ssin: str | None = None
    query: str | None = None


def actor_of(caller: Principal) -> Actor:
    return Actor(role=caller.role, client_id=caller.client_id, nihdi=caller.nihdi, ssin=caller.ssin)


class Guard:
    def __init__(self, store: ResourceStore, caller: Principal, info: RequestInfo) -> None:
        self.store = store
        self.caller = caller
        self.info = info
        self.actor = actor_of(caller)
        self._verdicts: dict[tuple[str, str], Verdict] = {}  # the register asked once per request

    @property
    def now(self) -> datetime:
        return self.info.now

    def request(
        self,
        action: Action,
        target: Resource | ResourceKind,
        *,
        path: AccessPath | None = None,
        visibility: Visibility | None = None,
    ) -> AccessRequest:
        """An access request at the request's clock, by ``path`` (default: the eID read shown in
        the headers, else the registered relationship)."""
        chosen = path or self.info.presence or ByRelationship()
        return AccessRequest(self.actor, action, target, self.now, chosen, visibility)

    async def facts(self, ssin: str | None) -> PatientFacts:
        if not ssin:
            return PatientFacts(NO_PATIENT)
        # RX-14: a prescriber's GMF colleagues decide what a ``gmf`` prescription shows him.
        prescriber = self.actor.nihdi if self.actor.role == Role.PRESCRIBER else None
        # RX-16, PO-3: a patient acting for another person, by the mandates he holds.
        holder = self.actor.ssin if self.actor.role == Role.PATIENT else None
        return await load_facts(
            self.store, ssin, prescriber=prescriber, now=self.now, holder=holder
        )

    async def facts_or_none(self, ssin: str | None) -> PatientFacts | None:
        """The facts, or ``None`` when they cannot be loaded (the caller denies: ``ERROR``)."""
        try:
            return await self.facts(ssin)
        except OUTAGES:  # the database is unreachable: 503 + Retry-After (gateway.ops), no 403
            raise
        except Exception as exc:  # docs/architecture.md 5: any error while deciding is a deny
            log.warning("access_facts_unavailable", error_type=type(exc).__name__)
            return None

    async def decide(
        self, request: AccessRequest, ssin: str | None, facts: PatientFacts | None = None
    ) -> Decision:
        """``consent.decide`` on the patient's facts; fail closed if they cannot be loaded."""
        if facts is None:
            facts = await self.facts_or_none(ssin)
            if facts is None:
                return Decision(False, Reason.ERROR)
        return await self.proven(decide(request, facts), request.path, facts.ssin)

    async def proven(self, decision: Decision, path: AccessPath, ssin: str) -> Decision:
        """CO-2, RX-18 (b): a permit that rests on an eID read (``permit-presence``) stands only if
        the national register says the card is ``ssin``'s current card; otherwise
        ``presence-not-proven``, or ``presence-check-unavailable`` when the register gave no answer
        (fail closed). Without a register configured, the decision is left as it is."""
        register = self.info.register
        if (
            register is None
            or decision.reason is not Reason.PERMIT_PRESENCE
            or not isinstance(path, ByPresence)
        ):
            return decision
        key = (ssin, path.card_number)
        if key not in self._verdicts:
            self._verdicts[key] = await register.check(ssin, path.card_number)
        verdict = self._verdicts[key]
        if verdict is Verdict.PROVEN:
            return decision
        if verdict is Verdict.NOT_PROVEN:
            return Decision(False, Reason.PRESENCE_NOT_PROVEN)
        return Decision(False, Reason.PRESENCE_CHECK_UNAVAILABLE)

    def audit_record(self, decision: Decision, event: Event) -> AuditRecord:
        outcome = "permit" if decision.permit else "deny"
        if decision.reason in (Reason.ERROR, Reason.PRESENCE_CHECK_UNAVAILABLE):
            outcome = "error"  # a failure on our side, not the caller's lack of a right
        return self._record(outcome, decision.reason.value, event)

    def _record(self, outcome: str, reason: str, event: Event) -> AuditRecord:
        return AuditRecord(
            action=event.action,
            outcome=outcome,
            reason=reason,
            resource_type=event.resource_type,
            resource_id=event.resource_id,
            patient_ssin=event.patient_ssin,
            actor=self.caller,
            request_id=self.info.request_id,
            query=event.query,
            software=self.info.software,
        )

    def refuse(self, decision: Decision, event: Event) -> NoReturn:
        """403 with the reason code; audited in its own transaction (gateway.audit.refusals)."""
        raise AccessDenied(self.audit_record(decision, event))

    def refuse_change(
        self, reason: str, event: Event, message: str, *, expression: str | None = None
    ) -> NoReturn:
        """409: permitted, but the record's state forbids the change (RX-7); audited as a denial
        with ``reason`` (a short code) in its own transaction (gateway.audit.refusals)."""
        raise RefusedChange(self._record("deny", reason, event), message, expression=expression)

    async def audit(self, decision: Decision, *events: Event) -> None:
        """Write the AuditEvents of a permitted interaction (last, in the request's transaction;
        several, such as a dispense and its prescription's transition, in one append)."""
        records = [self.audit_record(decision, event) for event in events]
        await record(self.store.session, self.store.keyring, *records)

    async def audit_no_match(self, event: Event) -> None:
        """A search by identifier that found nothing: nothing disclosed, no decision to make."""
        await record(
            self.store.session, self.store.keyring, self._record("permit", NO_MATCH, event)
        )

    async def audit_unseen(self, decision: Decision, event: Event) -> None:
        """A search by business identifier found a record the caller may not see: the refusal is
        written in the request's transaction and the caller gets what a miss gets, an empty
        Bundle (no "exists but not yours" oracle; docs/access.md)."""
        assert not decision.permit
        await record(self.store.session, self.store.keyring, self.audit_record(decision, event))

    @asynccontextmanager
    async def access(self, decision: Decision, event: Event, *more: Event) -> AsyncIterator[Event]:
        """Refuse now, or let the change run and then audit it (module docstring): ``event``,
        and ``more`` events the same interaction changed (docs/architecture.md 6: a dispense is audited with
        its prescription's transition). The caller may fill in ``event`` (the id of what it
        created) inside the block."""
        if not decision.permit:
            self.refuse(decision, event)
        yield event
        await self.audit(decision, event, *more)
