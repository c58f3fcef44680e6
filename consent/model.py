"""The values an access decision is made of: who asks, for what, how, and the patient's facts.

Everything here is a frozen value with no behaviour beyond reading itself; the rules live in
``consent.policy``. Shapes follow docs/architecture.md 4c and docs/domain.md sections 2.5, 2.6 and 3.
All instants are timezone-aware; a naive one makes the decision fail closed (``Reason.ERROR``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import TypeAlias


class Role(StrEnum):
    """The authenticated caller's role (docs/architecture.md 1). Any other value is refused (CO-12.1)."""

    PRESCRIBER = "prescriber"
    PHARMACIST = "pharmacist"
    PATIENT = "patient"
    ADMIN = "admin"  # the operator
    FUND = "fund"  # a sickness fund: outside the care relationship (CO-12.1)


class Action(StrEnum):
    READ = "read"  # one record
    SEARCH = "search"  # a patient's records (the search itself, or one record appearing in it)
    CREATE = "create"
    UPDATE = "update"  # consent family: withdraw, lift, end (status inactive); claim: cancel
    REVOKE = "revoke"  # prescription $revoke (RX-7)
    SET_VISIBILITY = "set-visibility"  # prescription $set-visibility (RX-13, RX-14)
    # The executor's acts on a prescription (RX-7): take it in process, release it, deliver it
    # (dispense), archive it. The state machine (gateway.prescriptions.lifecycle) says whether the
    # prescription's state allows the act (409); the decision only who may attempt it.
    DISPENSE = "dispense"
    RESERVE = "reserve"  # the patient reserves at a pharmacy, or cancels the reservation (RX-15)
    DELETE = "delete"  # the patient deletes an open prescription (RX-7 "verwijderen")
    UNDO_DISPENSE = "undo-dispense"  # MedicationDispense $undo (RX-7 markAsUnDelivered)
    SET_FEEDBACK = "set-feedback"  # prescription $set-feedback: the author's flag (RX-8)


class ResourceKind(StrEnum):
    PRESCRIPTION = "prescription"  # MedicationRequest
    DISPENSE = "dispense"  # MedicationDispense
    CONSENT = "consent"  # informed consent (Consent, category informed-consent)
    RELATIONSHIP = "relationship"  # Consent, category therapeutic-relationship
    EXCLUSION = "exclusion"  # Consent, category exclusion
    CLAIM = "claim"  # eAttest Claim and its ClaimResponse
    AUDIT = "audit"  # AuditEvent
    FEEDBACK = "feedback"  # a pharmacy's Communication about a prescription (RX-8)
    MANDATE = "mandate"  # Consent, category mandate: a patient lets someone act for him (RX-16)


class PrescriptionState(StrEnum):
    """Gateway status model of RX-6; ``EXPIRED`` is derived from the validity end by the caller."""

    OPEN = "open"  # NOT_DELIVERED
    IN_PROCESS = "in-process"  # taken in process by a pharmacy or reserved (RX-15)
    DELIVERED = "delivered"
    ARCHIVED = "archived"
    REVOKED = "revoked"
    EXPIRED = "expired"
    ENTERED_IN_ERROR = "entered-in-error"


# RX-9: "open" means not delivered or in process.
OPEN_STATES: frozenset[PrescriptionState] = frozenset(
    {PrescriptionState.OPEN, PrescriptionState.IN_PROCESS}
)


class PharmacyVisibility(StrEnum):
    """RX-13: which pharmacies see the prescription in a search by patient."""

    ALL = "all"
    ONE = "one"  # only ``Visibility.pharmacy``
    NONE = "none"


class PrescriberVisibility(StrEnum):
    """RX-14: which prescribers other than the author see it."""

    OPEN = "open"
    CLOSED = "closed"
    # The author's GMF practice and the patient's GMF holder's practice (``consent._predicates``).
    GMF = "gmf"


class RelationshipKind(StrEnum):
    """CO-5, CO-6: how a therapeutic relationship arose (``urn:ehealth-gateway:relationship-kind``)."""

    EID_READ = "eid-read"
    REFERRAL = "referral"
    GMF = "gmf"
    HOSPITAL = "hospital"
    EMERGENCY = "emergency"


class MandateAction(StrEnum):
    """RX-16, PO-4: what a mandate lets its holder do (``urn:ehealth-gateway:mandate-action``)."""

    COLLECT = "collect"  # fetch the open prescriptions, be recorded as who collected them
    VIEW = "view"  # see the prescriptions, dispenses, consents and access log
    MANAGE = "manage"  # change consent, exclusions, relationships, visibility; reserve, delete


class HolderRole(StrEnum):
    """RX-16: an individual's proxy ("volmacht", by SSIN) or a professional's mandate ("mandaat",
    a nursing home's pharmacy, by organisation NIHDI)."""

    PROXY = "proxy"
    PROFESSIONAL = "professional"


class Reason(StrEnum):
    """Stable reason codes: they go into audit events and denied OperationOutcomes (docs/architecture.md 5)."""

    PERMIT_AUTHOR = "permit-author"  # own prescription or claim; for a search: own records only
    PERMIT_PATIENT_SELF = "permit-patient-self"  # PO-4
    PERMIT_RID = "permit-rid"  # RX-13, RX-17.1
    # RX-6 getPrescriptionStatus: the RID of a prescription no longer open shows its state only
    PERMIT_RID_STATUS = "permit-rid-status"
    PERMIT_PRESENCE = "permit-presence"  # eID read (RX-18, CO-2)
    PERMIT_RELATIONSHIP = "permit-relationship"  # consent + relationship + not excluded (CO-12)
    PERMIT_DISPENSER = "permit-dispenser"  # the pharmacy's own dispense (RX-7 undo)
    PERMIT_RESERVATION = "permit-reservation"  # RX-15: the pharmacy lists what was reserved at it
    PERMIT_MANDATE = "permit-mandate"  # RX-16, PO-4: the holder of an active mandate
    PERMIT_PARENT = "permit-parent"  # PO-3: a parent for his child under 12
    PERMIT_ADMIN = "permit-admin"  # operator reading the audit trail (docs/architecture.md 4, 8)
    WRONG_ROLE = "wrong-role"  # CO-12.1: this role may not do this to this kind of data
    NOT_OWN_DATA = "not-own-data"  # PO-4; or a consent-family record naming another provider
    NO_CONSENT = "no-consent"  # CO-12.2
    EXCLUDED = "excluded"  # CO-10, CO-12.3
    NO_RELATIONSHIP = "no-relationship"  # CO-12.4 (and no valid proof of presence, RX-18)
    NO_PRESENCE = "no-presence"  # writing consent or relationships needs the eID read (CO-2)
    # CO-2, RX-18 (b): the national register says the card read is not the patient's current
    # card (unknown, another person's, replaced or expired): the proof proves nothing.
    PRESENCE_NOT_PROVEN = "presence-not-proven"
    # The national register could not answer in time: the proof cannot be checked, so it does not
    # count (fail closed, docs/architecture.md 5).
    PRESENCE_CHECK_UNAVAILABLE = "presence-check-unavailable"
    NOT_OPEN = "not-open"  # RX-9, docs/architecture.md 5: delivered, archived, revoked, expired
    HIDDEN_BY_PATIENT = "hidden-by-patient"  # RX-13, RX-14
    NOT_AUTHOR = "not-author"  # revoke, set visibility, claims: the author only
    NOT_DISPENSER = "not-dispenser"  # undo: the dispensing pharmacy only
    FEEDBACK_REFUSED = "feedback-refused"  # RX-8: the author switched feedback off
    ERROR = "error"  # anything unexpected: fail closed

    @property
    def permits(self) -> bool:
        return self.value.startswith("permit-")


@dataclass(frozen=True)
class Decision:
    permit: bool
    reason: Reason


@dataclass(frozen=True)
class Actor:
    """The authenticated caller. ``role`` may be any string: an unknown one is ``wrong-role``."""

    role: Role | str
    client_id: str
    nihdi: str | None = None  # professional NIHDI, or the pharmacy's organisation NIHDI (ID-9)
    ssin: str | None = None  # patients only


@dataclass(frozen=True)
class Visibility:
    """Per-prescription patient choice (docs/architecture.md 4c); the defaults are the Recip-e defaults."""

    pharmacies: PharmacyVisibility = PharmacyVisibility.ALL
    pharmacy: str | None = None  # organisation NIHDI when ``pharmacies`` is ONE
    prescribers: PrescriberVisibility = PrescriberVisibility.OPEN


@dataclass(frozen=True)
class Resource:
    """What the rules need to know about one stored (or about to be stored) record.

    Fields that do not apply to a kind stay ``None``. ``id`` is the caller's handle only.
    """

    kind: ResourceKind
    id: str | None = None
    patient_ssin: str | None = None  # the data subject; when given it must be the facts' patient
    author_nihdi: str | None = None  # requester; claim provider; dispensing pharmacy of a dispense
    state: PrescriptionState | None = None  # prescriptions only; required to decide on one
    rid: str | None = None
    dispensed_by: str | None = None  # prescription: the pharmacy that delivered it
    visibility: Visibility = field(default_factory=Visibility)
    # relationship or exclusion: the provider it names; dispense: the prescriber of its prescription
    provider_nihdi: str | None = None
    # prescription: the pharmacy holding it in process (RX-7); whether its author accepts feedback
    # (RX-8). Feedback: the prescription it is about (sender ``author_nihdi``, recipient
    # ``provider_nihdi``).
    held_by: str | None = None
    accepts_feedback: bool = True
    about: Resource | None = None
    holder_ssin: str | None = None  # mandate: a proxy's SSIN (a professional's: provider_nihdi)


@dataclass(frozen=True)
class ByRid:
    """RX-17.1: the pharmacy holds the RID (barcode or typed); it stands for the patient's presence."""

    rid: str


@dataclass(frozen=True)
class ByPresence:
    """RX-17.2, CO-2: the patient's eID (or Kids-ID, ISI+) was read: card number and time."""

    card_number: str
    read_at: datetime


@dataclass(frozen=True)
class ByRelationship:
    """No evidence beyond the facts: the caller relies on a registered therapeutic relationship."""


AccessPath: TypeAlias = ByRid | ByPresence | ByRelationship


@dataclass(frozen=True)
class AccessRequest:
    """One question: may ``actor`` do ``action`` to ``target`` at ``now``, having come by ``path``?

    ``target`` is a ``Resource`` (one record) or, for a ``SEARCH`` only, a ``ResourceKind``: may
    this search of the patient's records run at all. ``visibility`` is the new choice asked for by
    a ``SET_VISIBILITY``.
    """

    actor: Actor
    action: Action
    target: Resource | ResourceKind
    now: datetime
    path: AccessPath = ByRelationship()
    visibility: Visibility | None = None

    @property
    def kind(self) -> ResourceKind:
        return self.target if isinstance(self.target, ResourceKind) else self.target.kind


@dataclass(frozen=True)
class InformedConsent:
    """CO-1, CO-4: the patient's global consent; withdrawn = ``active`` False (or ``end`` passed)."""

    start: datetime
    end: datetime | None = None
    active: bool = True

    def active_at(self, now: datetime) -> bool:
        return self.active and self.start <= now and (self.end is None or now <= self.end)


@dataclass(frozen=True)
class Relationship:
    """CO-5..CO-7: ``provider_nihdi`` is the physician's NIHDI or the pharmacy's organisation NIHDI."""

    provider_nihdi: str
    kind: RelationshipKind
    start: datetime
    end: datetime
    active: bool = True

    def active_at(self, now: datetime) -> bool:
        # CO-7: active at t iff start <= t <= end and not ended by the patient or provider.
        return self.active and self.start <= now <= self.end


@dataclass(frozen=True)
class Exclusion:
    """CO-10: the patient bars one provider until the patient lifts it (``active`` False)."""

    provider_nihdi: str
    active: bool = True


@dataclass(frozen=True)
class Mandate:
    """RX-16, PO-4: the patient lets ``holder`` (a proxy's SSIN or a pharmacy's organisation
    NIHDI) do ``actions`` for him from ``start`` until ``end`` (open when ``None``), unless ended
    (``active`` False)."""

    holder: str
    role: HolderRole
    actions: frozenset[MandateAction]
    start: datetime
    end: datetime | None = None
    active: bool = True

    def active_at(self, now: datetime) -> bool:
        return self.active and self.start <= now and (self.end is None or now <= self.end)


@dataclass(frozen=True)
class FamilyLink:
    """PO-3: ``parent_ssin`` is a parent of the patient from ``since`` (National Register
    household data, kept by the operator), until ``until`` when unlinked."""

    parent_ssin: str
    since: datetime
    until: datetime | None = None

    def active_at(self, now: datetime) -> bool:
        return self.since <= now and (self.until is None or now < self.until)


@dataclass(frozen=True)
class PatientFacts:
    """What is known about one patient, loaded by the caller (``gateway/access/facts.py``).

    ``consents`` may hold the history: any record active at ``now`` counts (CO-4 keeps one active).
    ``gmf_colleagues`` is the one fact about the caller: for a prescriber, the persons (ID-7: the
    first 8 digits) of the GPs sharing a GMF practice with him at ``now``, himself included when he
    is a member (RX-14; reference data, ``gateway/storage/practices.py``).
    """

    ssin: str
    consents: tuple[InformedConsent, ...] = ()
    relationships: tuple[Relationship, ...] = ()
    exclusions: tuple[Exclusion, ...] = ()
    gmf_colleagues: frozenset[str] = frozenset()
    # RX-16, PO-3: the patient's mandates (a proxy's only when the caller holds it) and the links
    # naming the caller as a parent; the patient's birth date (from his SSIN) for the age of PO-3.
    mandates: tuple[Mandate, ...] = ()
    parents: tuple[FamilyLink, ...] = ()
    birth_date: date | None = None
