"""The facts an access decision is made of, one predicate each (domain CO-1..CO-10, RX-4..RX-18).

Each answers one question about the request or the patient's facts; ``consent.policy`` puts them in
the order of CO-12.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from consent.model import (
    OPEN_STATES,
    AccessPath,
    Actor,
    ByPresence,
    ByRid,
    HolderRole,
    MandateAction,
    PatientFacts,
    PharmacyVisibility,
    PrescriberVisibility,
    PrescriptionState,
    RelationshipKind,
    Resource,
    Role,
)
from fhir_profiles.ages import REPRESENTED_BELOW_AGE, age_on
from fhir_profiles.dates import brussels_date
from fhir_profiles.nihdi import parse_professional, same_person

# [A] Proof of presence is an eID read no older than an eID session (SEC-1: 12 h), and not in the
# future beyond a small clock skew between the provider's software and the gateway.
PRESENCE_MAX_AGE: Final = timedelta(hours=12)
CLOCK_SKEW: Final = timedelta(minutes=5)


def has_consent(facts: PatientFacts, now: datetime) -> bool:
    """CO-1, CO-12.2: an informed consent active at ``now``."""
    return any(consent.active_at(now) for consent in facts.consents)


def same_provider(named: str | None, nihdi: str | None, role: Role | str) -> bool:
    """Whether ``named`` (an author, an exclusion, a relationship) is the provider ``nihdi`` of
    ``role``.

    A prescriber holds a professional NIHDI number: the first eight digits name the person for a
    whole career, the competence code changes with his titles (ID-7), so the person is compared
    (``fhir_profiles.nihdi.same_person``): a physician who gains a specialist title still reads
    his own prescriptions, an exclusion of the person bars every competence code, a relationship
    counts under each. A pharmacy's organisation number (ID-9) compares exactly.
    """
    if named is None or nihdi is None:
        return False
    if role == Role.PRESCRIBER:
        return named == nihdi or same_person(named, nihdi)
    return named == nihdi


def is_excluded(actor: Actor, role: Role, facts: PatientFacts) -> bool:
    """CO-10, CO-12.3: an active exclusion names this provider (the person, ``same_provider``)."""
    return any(
        exclusion.active and same_provider(exclusion.provider_nihdi, actor.nihdi, role)
        for exclusion in facts.exclusions
    )


def excludes_pharmacy(facts: PatientFacts, nihdi: str) -> bool:
    """CO-10, RX-15: the patient has an active exclusion of the pharmacy ``nihdi`` (a pharmacy is
    its organisation number): he cannot reserve there."""
    return any(
        exclusion.active and same_provider(exclusion.provider_nihdi, nihdi, Role.PHARMACIST)
        for exclusion in facts.exclusions
    )


def has_relationship(actor: Actor, facts: PatientFacts, now: datetime) -> bool:
    """CO-7, CO-12.4: a relationship active at ``now`` names this provider: the physician (the
    person, under any competence code), or the pharmacy's organisation NIHDI (a pharmacy
    relationship covers the pharmacy)."""
    return any(
        same_provider(relation.provider_nihdi, actor.nihdi, actor.role) and relation.active_at(now)
        for relation in facts.relationships
    )


def is_present(path: AccessPath, now: datetime) -> bool:
    """RX-18(b), CO-2: the patient's eID was read (card number and time) within one eID session."""
    return (
        isinstance(path, ByPresence)
        and bool(path.card_number.strip())
        and now - PRESENCE_MAX_AGE <= path.read_at <= now + CLOCK_SKEW
    )


def is_author(actor: Actor, record: Resource) -> bool:
    """The record is the provider's own: requester of a prescription, sender of a claim (the
    person, ``same_provider``), pharmacy of a dispense."""
    return same_provider(record.author_nihdi, actor.nihdi, actor.role)


def names_me(actor: Actor, record: Resource) -> bool:
    """The record names this provider: a relationship's ``provision.actor``, the prescriber of a
    dispense's prescription (the person, ``same_provider``)."""
    return same_provider(record.provider_nihdi, actor.nihdi, actor.role)


def is_open(prescription: Resource) -> bool:
    """RX-9, docs/architecture.md 5: not delivered, archived, revoked, expired or entered in error."""
    return prescription.state in OPEN_STATES


def dispensed_by(actor: Actor, prescription: Resource) -> bool:
    """The pharmacy delivered this prescription itself (and has not undone it)."""
    if prescription.state not in (PrescriptionState.DELIVERED, PrescriptionState.ARCHIVED):
        return False
    return prescription.dispensed_by is not None and prescription.dispensed_by == actor.nihdi


def visible_to_pharmacy(prescription: Resource, pharmacy_nihdi: str | None) -> bool:
    """RX-13: all pharmacies, only the named one, or none (a 'one' without a name: none)."""
    visibility = prescription.visibility
    if visibility.pharmacies == PharmacyVisibility.ALL:
        return True
    return (
        visibility.pharmacies == PharmacyVisibility.ONE
        and visibility.pharmacy is not None
        and visibility.pharmacy == pharmacy_nihdi
    )


def person_of(nihdi: str | None) -> str | None:
    """The person behind a professional NIHDI number (ID-7: its first 8 digits), or ``None``."""
    number = parse_professional(nihdi)
    return number.person if number is not None else None


def gmf_held_nearby(actor: Actor, facts: PatientFacts, now: datetime) -> bool:
    """RX-14, CO-5: the patient's GMF (a relationship of kind ``gmf`` active at ``now``) is held by
    the caller or by a GP sharing a GMF practice with him (``PatientFacts.gmf_colleagues``)."""
    circle = facts.gmf_colleagues | {person_of(actor.nihdi) or ""}
    return any(
        relation.kind == RelationshipKind.GMF
        and relation.active_at(now)
        and person_of(relation.provider_nihdi) in circle
        for relation in facts.relationships
    )


def visible_to_prescribers(
    prescription: Resource, actor: Actor, facts: PatientFacts, now: datetime
) -> bool:
    """RX-14: ``open`` to other prescribers (under the network rules), ``closed`` to none of them;
    ``gmf`` to the GPs sharing a GMF practice with the author, and to the patient's GMF holder and
    the GPs of his practice ("the author, the GP holding the GMF and the colleagues of that GMF
    practice"). [A] Both practices count, the holder's (RX-14) and the author's (issue 16); they
    are one practice when a GP of the patient's practice wrote it."""
    chosen = prescription.visibility.prescribers
    if chosen == PrescriberVisibility.OPEN:
        return True
    if chosen != PrescriberVisibility.GMF:
        return False
    author = person_of(prescription.author_nihdi)
    return (author is not None and author in facts.gmf_colleagues) or gmf_held_nearby(
        actor, facts, now
    )


def rid_matches(path: ByRid, prescription: Resource) -> bool:
    """The RID held is this prescription's (RX-4: compared in upper case)."""
    return prescription.rid is not None and path.rid.strip().upper() == prescription.rid.upper()


def holds_mandate(actor: Actor, facts: PatientFacts, now: datetime, action: MandateAction) -> bool:
    """RX-16, PO-4: a mandate of the patient active at ``now`` names the caller (a patient by his
    SSIN as proxy, a pharmacy by its organisation NIHDI as professional) and grants ``action``."""
    if actor.role == Role.PATIENT:
        role, holder = HolderRole.PROXY, actor.ssin
    elif actor.role == Role.PHARMACIST:
        role, holder = HolderRole.PROFESSIONAL, actor.nihdi
    else:
        return False
    return holder is not None and any(
        mandate.role is role
        and mandate.holder == holder
        and action in mandate.actions
        and mandate.active_at(now)
        for mandate in facts.mandates
    )


def is_parent_of_young_child(actor: Actor, facts: PatientFacts, now: datetime) -> bool:
    """PO-3: the caller is linked as a parent of the patient at ``now`` and the patient is under
    12 on that Brussels calendar day (the time rule of docs/domain.md 10). An unknown birth date
    gives no parent's right."""
    if actor.role != Role.PATIENT or actor.ssin is None or facts.birth_date is None:
        return False
    young = age_on(facts.birth_date, brussels_date(now)) < REPRESENTED_BELOW_AGE
    return young and any(
        link.parent_ssin == actor.ssin and link.active_at(now) for link in facts.parents
    )


def may_collect_for(receiver_ssin: str, facts: PatientFacts, now: datetime) -> bool:
    """RX-16, PO-3: the person ``receiver_ssin`` may collect the patient's medicines at ``now``:
    he is the patient, holds an active ``collect`` mandate of his, or is a parent of the child
    under 12. (``facts`` loaded with him as the holder: ``gateway.access.facts``.)"""
    person = Actor(role=Role.PATIENT, client_id="", ssin=receiver_ssin)
    return (
        receiver_ssin == facts.ssin
        or holds_mandate(person, facts, now, MandateAction.COLLECT)
        or is_parent_of_young_child(person, facts, now)
    )
