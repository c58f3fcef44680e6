"""Plain factories for access-decision tests: valid values, overridden where a test cares.

``facts(consent=False)``, ``prescription(state=PrescriptionState.DELIVERED)``,
``request(pharmacist(), prescription(), path=ByRid(RID))``: a test spells out only what matters.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from consent import (
    AccessPath,
    AccessRequest,
    Action,
    Actor,
    ByPresence,
    ByRelationship,
    Exclusion,
    InformedConsent,
    PatientFacts,
    Relationship,
    RelationshipKind,
    Resource,
    ResourceKind,
    Role,
    Visibility,
    relationship_end,
)
from consent.model import Decision, PharmacyVisibility, PrescriptionState, Reason

NOW = datetime(2025, 3, 14, 10, 0, tzinfo=UTC)

# Synthetic numbers (domain 1.1, ID-7); the NIHDI pair matches tests/fixtures/app.py.
SSIN = "85073003328"
OTHER_SSIN = "92031512322"
AUTHOR = "19234011004"  # wrote the prescriptions below
PRESCRIBER = "12345625004"  # another physician
PHARMACY = "06012345"  # organisation NIHDI
OTHER_PHARMACY = "06054321"
RID = "BEP1A2B3C4D5"
CARD = "592123456789"


def prescriber(nihdi: str | None = PRESCRIBER) -> Actor:
    return Actor(role=Role.PRESCRIBER, client_id="prescribing-software", nihdi=nihdi)


def author() -> Actor:
    return prescriber(AUTHOR)


def pharmacist(nihdi: str | None = PHARMACY) -> Actor:
    return Actor(role=Role.PHARMACIST, client_id="pharmacy-software", nihdi=nihdi)


def patient(ssin: str | None = SSIN) -> Actor:
    return Actor(role=Role.PATIENT, client_id="portal", ssin=ssin)


def admin() -> Actor:
    return Actor(role=Role.ADMIN, client_id="operator")


def fund() -> Actor:
    return Actor(role=Role.FUND, client_id="fund-100")


def prescription(**overrides: Any) -> Resource:
    """An open prescription by ``AUTHOR`` for ``SSIN``, visible to all (the Recip-e default)."""
    base = Resource(
        kind=ResourceKind.PRESCRIPTION,
        id="rx-1",
        patient_ssin=SSIN,
        author_nihdi=AUTHOR,
        state=PrescriptionState.OPEN,
        rid=RID,
    )
    return replace(base, **overrides)


def record(kind: ResourceKind, **overrides: Any) -> Resource:
    """Any other kind of record about ``SSIN``."""
    return replace(Resource(kind=kind, id=f"{kind}-1", patient_ssin=SSIN), **overrides)


def visibility(**overrides: Any) -> Visibility:
    return replace(Visibility(), **overrides)


def informed_consent(**overrides: Any) -> InformedConsent:
    return replace(InformedConsent(start=NOW - timedelta(days=365)), **overrides)


def relationship(provider: str, **overrides: Any) -> Relationship:
    """An eID-read relationship started a month ago, with its legal end (CO-6)."""
    start = overrides.pop("start", NOW - timedelta(days=30))
    kind = overrides.pop("kind", RelationshipKind.EID_READ)
    end = overrides.pop("end", relationship_end(kind, start))
    return Relationship(provider_nihdi=provider, kind=kind, start=start, end=end, **overrides)


def exclusion(provider: str, **overrides: Any) -> Exclusion:
    return replace(Exclusion(provider_nihdi=provider), **overrides)


def facts(
    *,
    consent: bool = True,
    related: tuple[str, ...] = (),
    excluded: tuple[str, ...] = (),
    **overrides: Any,
) -> PatientFacts:
    """``SSIN``'s facts: consent (by default), relationships with ``related``, exclusions."""
    base = PatientFacts(
        ssin=SSIN,
        consents=(informed_consent(),) if consent else (),
        relationships=tuple(relationship(nihdi) for nihdi in related),
        exclusions=tuple(exclusion(nihdi) for nihdi in excluded),
    )
    return replace(base, **overrides)


def presence(read_at: datetime | None = None, card_number: str = CARD) -> ByPresence:
    """The patient's eID read ten minutes ago."""
    return ByPresence(card_number=card_number, read_at=read_at or NOW - timedelta(minutes=10))


def request(
    actor: Actor,
    target: Resource | ResourceKind,
    action: Action = Action.READ,
    *,
    path: AccessPath | None = None,
    now: datetime = NOW,
    new_visibility: Visibility | None = None,
) -> AccessRequest:
    return AccessRequest(
        actor=actor,
        action=action,
        target=target,
        now=now,
        path=path or ByRelationship(),
        visibility=new_visibility,
    )


def permit(reason: Reason) -> Decision:
    return Decision(True, reason)


def deny(reason: Reason) -> Decision:
    return Decision(False, reason)


NOT_OPEN_STATES = [
    PrescriptionState.DELIVERED,
    PrescriptionState.ARCHIVED,
    PrescriptionState.REVOKED,
    PrescriptionState.EXPIRED,
    PrescriptionState.ENTERED_IN_ERROR,
]
HIDING_FROM_PHARMACY = [  # RX-13: each hides a prescription from PHARMACY in a search by patient
    visibility(pharmacies=PharmacyVisibility.NONE),
    visibility(pharmacies=PharmacyVisibility.ONE, pharmacy=OTHER_PHARMACY),
    visibility(pharmacies=PharmacyVisibility.ONE, pharmacy=None),
]
