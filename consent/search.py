"""Searches by patient: what may appear, as SQL-ready conditions or as a post-filter.

docs/architecture.md 5: a hidden prescription never appears in a search by patient, not even in the total, so
the store must filter before counting and paging. ``search_filter`` turns the decision on a search of
one patient's prescriptions into row conditions for the store's WHERE clause; ``filter_visible``
post-filters any records by deciding on each. ``SearchFilter.matches`` and ``decide`` agree on every
record (tests/consent/test_search.py proves it over a grid).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from consent._predicates import gmf_held_nearby, holds_mandate, person_of, same_provider
from consent.model import (
    OPEN_STATES,
    AccessRequest,
    Action,
    Decision,
    MandateAction,
    PatientFacts,
    PharmacyVisibility,
    PrescriberVisibility,
    PrescriptionState,
    Reason,
    Resource,
    ResourceKind,
    Role,
)
from consent.policy import decide


@dataclass(frozen=True)
class SearchFilter:
    """Which of one patient's prescriptions a search may return, and the decision on the search.

    A row is returned iff ``everything``; or its author is the prescriber ``author_nihdi`` (the
    person under any competence code, ID-7: ``consent._predicates.same_provider``); or
    ``others`` and its state is in ``states`` and, when ``pharmacy_nihdi`` is set, its pharmacy
    visibility is ``all``, or ``one`` naming ``pharmacy_nihdi`` (RX-13), and, when
    ``prescribers_open`` is set, its prescriber visibility is ``open``, or ``gmf`` with
    ``gmf_all`` or its author's person in ``gmf_authors`` (RX-14). A denied search returns
    nothing. ``decision`` goes into the audit event of the search.

    ``tells_hidden`` (RX-14): the caller is told how many rows ``hides``, those kept from him by
    the patient's prescriber choice alone, without their content.
    """

    decision: Decision
    everything: bool = False
    author_nihdi: str | None = None
    others: bool = False
    states: frozenset[PrescriptionState] = frozenset()
    pharmacy_nihdi: str | None = None
    prescribers_open: bool = False
    gmf_all: bool = False
    gmf_authors: frozenset[str] = frozenset()
    tells_hidden: bool = False

    def matches(self, prescription: Resource) -> bool:
        """The same conditions in Python, for a store that post-filters."""
        if not self.decision.permit:
            return False
        if self.everything:
            return True
        if same_provider(prescription.author_nihdi, self.author_nihdi, Role.PRESCRIBER):
            return True
        if not self.others or prescription.state not in self.states:
            return False
        visibility = prescription.visibility
        if self.pharmacy_nihdi is not None and not (
            visibility.pharmacies == PharmacyVisibility.ALL
            or (
                visibility.pharmacies == PharmacyVisibility.ONE
                and visibility.pharmacy == self.pharmacy_nihdi
            )
        ):
            return False
        return not self.prescribers_open or self._shown_to_prescriber(prescription)

    def hides(self, prescription: Resource) -> bool:
        """RX-14: the row would be returned but for the patient's prescriber choice (closed, or
        gmf outside the caller's practice): the caller is told it exists, not what it is."""
        return (
            self.decision.permit
            and self.tells_hidden
            and not same_provider(prescription.author_nihdi, self.author_nihdi, Role.PRESCRIBER)
            and prescription.state in self.states
            and not self._shown_to_prescriber(prescription)
        )

    def _shown_to_prescriber(self, prescription: Resource) -> bool:
        chosen = prescription.visibility.prescribers
        if chosen == PrescriberVisibility.OPEN:
            return True
        author = person_of(prescription.author_nihdi)
        return chosen == PrescriberVisibility.GMF and (
            self.gmf_all or (author is not None and author in self.gmf_authors)
        )


def search_filter(request: AccessRequest, facts: PatientFacts) -> SearchFilter:
    """The filter for ``request``: a ``SEARCH`` of the patient's prescriptions (target
    ``ResourceKind.PRESCRIPTION``) by patient, not by RID. Never raises: any error is a denied
    search that returns nothing."""
    try:
        return _search_filter(request, facts)
    except Exception:
        return SearchFilter(Decision(False, Reason.ERROR))  # fail closed


def _search_filter(req: AccessRequest, facts: PatientFacts) -> SearchFilter:
    if req.action is not Action.SEARCH or req.target is not ResourceKind.PRESCRIPTION:
        raise ValueError("search_filter is for a search of the patient's prescriptions")
    decision = decide(req, facts)
    if not decision.permit:
        return SearchFilter(decision)
    role = Role(req.actor.role)
    if role is Role.PATIENT:
        if decision.reason is Reason.PERMIT_MANDATE and not holds_mandate(
            req.actor, facts, req.now, MandateAction.VIEW
        ):
            # RX-16: a holder who may only collect sees the open prescriptions, all of them.
            return SearchFilter(decision, others=True, states=OPEN_STATES)
        return SearchFilter(decision, everything=True)  # PO-4: everything about themself
    nihdi = req.actor.nihdi
    if role is Role.PRESCRIBER:
        if decision.reason is Reason.PERMIT_AUTHOR:
            return SearchFilter(decision, author_nihdi=nihdi)  # no consent etc.: own only
        # RX-9, RX-14: own ones, and others' open ones the patient shows this prescriber; he is
        # told how many others the patient's choice keeps from him.
        return SearchFilter(
            decision,
            author_nihdi=nihdi,
            others=True,
            states=OPEN_STATES,
            prescribers_open=True,
            gmf_all=gmf_held_nearby(req.actor, facts, req.now),
            gmf_authors=facts.gmf_colleagues,
            tells_hidden=True,
        )
    if role is Role.PHARMACIST:
        # RX-17.2, RX-13: open ones visible to this pharmacy.
        return SearchFilter(decision, others=True, states=OPEN_STATES, pharmacy_nihdi=nihdi)
    raise ValueError("no search filter for this role")


def decide_each(
    request: AccessRequest, facts: PatientFacts, records: Iterable[Resource]
) -> list[tuple[Resource, Decision]]:
    """``decide`` on each record as the target of ``request`` (a SEARCH: may it appear in this
    search; a READ with ``ByRid``: the records found by a RID lookup)."""
    return [(record, _decide_on(request, facts, record)) for record in records]


def filter_visible(
    request: AccessRequest, facts: PatientFacts, records: Iterable[Resource]
) -> list[Resource]:
    """The records of ``records`` that ``request`` may see, in their order."""
    return [record for record, decision in decide_each(request, facts, records) if decision.permit]


def _decide_on(request: AccessRequest, facts: PatientFacts, record: Resource) -> Decision:
    try:
        return decide(replace(request, target=record), facts)
    except Exception:
        return Decision(False, Reason.ERROR)
