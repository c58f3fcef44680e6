"""The thin loader of a patient's facts for ``consent.decide``.

One indexed query over the search columns of the patient's current Consent rows; no body is
decrypted. A row that cannot be read as a fact (an unknown category or relationship kind, a
relationship without its period) raises: the caller turns any error into ``Reason.ERROR``
(fail closed, docs/architecture.md 5). For a prescriber, one more query: the GPs sharing a GMF
practice with him (RX-14, ``gateway.storage.practices``); for a patient acting for another, the
family links naming him the other's parent (PO-3, ``gateway.storage.families``).
"""

from __future__ import annotations

from datetime import datetime

from consent import (
    Exclusion,
    FamilyLink,
    HolderRole,
    InformedConsent,
    Mandate,
    MandateAction,
    PatientFacts,
    Relationship,
    RelationshipKind,
)
from fhir_profiles.ages import birth_date
from gateway.storage.families import FamilyLinks
from gateway.storage.practices import GmfPractices
from gateway.storage.store import ResourceStore

RESOURCE = "Consent"
INFORMED_CONSENT = "informed-consent"
EXCLUSION = "exclusion"
RELATIONSHIP = "therapeutic-relationship"
MANDATE = "mandate"  # RX-16, PO-4
CATEGORIES = (INFORMED_CONSENT, EXCLUSION, RELATIONSHIP, MANDATE)


def actions_column(actions: frozenset[MandateAction]) -> str:
    """A mandate's actions as its ``kind`` column holds them: sorted, comma separated."""
    return ",".join(sorted(action.value for action in actions))


def actions_of_column(value: str | None) -> frozenset[MandateAction]:
    return frozenset(MandateAction(code) for code in (value or "").split(",") if code)


class UnreadableFact(ValueError):
    """A stored Consent row the decision cannot use."""


async def load_facts(
    store: ResourceStore,
    ssin: str,
    *,
    prescriber: str | None = None,
    now: datetime | None = None,
    holder: str | None = None,
) -> PatientFacts:
    """The consents, relationships, exclusions and mandates of the patient ``ssin``, history
    included (withdrawn and ended ones are ``active`` False); with ``prescriber`` (the caller's
    NIHDI) and ``now``, his GMF colleagues at ``now`` (RX-14). A proxy mandate is a fact only
    when ``holder`` (the calling patient's SSIN) holds it: the others' holders stay unread."""
    consents: list[InformedConsent] = []
    relationships: list[Relationship] = []
    exclusions: list[Exclusion] = []
    mandates: list[Mandate] = []
    holder_hmac = store.ssin_hash(holder) if holder else None
    for _logical_id, row in await store.current_columns(RESOURCE, ssin):
        active = row.status == "active"
        if row.category == INFORMED_CONSENT:
            if row.period_start is None:
                raise UnreadableFact("a consent without its start")
            consents.append(InformedConsent(row.period_start, row.period_end, active))
        elif row.category == RELATIONSHIP:
            if row.actor_nihdi is None or row.period_start is None or row.period_end is None:
                raise UnreadableFact("a relationship without its provider or period")
            relationships.append(
                Relationship(
                    row.actor_nihdi,
                    RelationshipKind(row.kind or ""),
                    row.period_start,
                    row.period_end,
                    active,
                )
            )
        elif row.category == EXCLUSION:
            if row.actor_nihdi is None:
                raise UnreadableFact("an exclusion without its provider")
            exclusions.append(Exclusion(row.actor_nihdi, active))
        elif row.category == MANDATE:
            if row.period_start is None:
                raise UnreadableFact("a mandate without its start")
            actions = actions_of_column(row.kind)
            if row.actor_nihdi is not None:
                mandates.append(
                    Mandate(
                        row.actor_nihdi,
                        HolderRole.PROFESSIONAL,
                        actions,
                        row.period_start,
                        row.period_end,
                        active,
                    )
                )
            elif row.holder_hmac is None:
                raise UnreadableFact("a mandate without its holder")
            elif holder is not None and row.holder_hmac == holder_hmac:
                mandates.append(
                    Mandate(
                        holder,
                        HolderRole.PROXY,
                        actions,
                        row.period_start,
                        row.period_end,
                        active,
                    )
                )
        else:
            raise UnreadableFact("a Consent of an unknown category")
    colleagues: frozenset[str] = frozenset()
    if prescriber is not None and now is not None:
        colleagues = await GmfPractices(store.session).colleagues(prescriber, now)
    parents: tuple[FamilyLink, ...] = ()
    if holder is not None and holder_hmac is not None and holder != ssin:
        # PO-3: only the links naming the calling patient as this patient's parent are read.
        families = FamilyLinks(store.session, store.keyring)
        links = await families.parent_links(store.ssin_hash(ssin), holder_hmac)
        parents = tuple(FamilyLink(holder, link.since, link.until) for link in links)
    return PatientFacts(
        ssin,
        tuple(consents),
        tuple(relationships),
        tuple(exclusions),
        colleagues,
        mandates=tuple(mandates),
        parents=parents,
        birth_date=birth_date(ssin) if parents else None,
    )
