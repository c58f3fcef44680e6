"""The access decision's search filter as SQL (docs/architecture.md 5: hidden prescriptions never appear in
a search by patient, not even in its total, so they are filtered before counting and paging).

``consent.SearchFilter`` says which of a patient's prescriptions a search may return;
``access_conditions`` says the same over the columns of ``resource_versions``. The state of a
prescription is computed as in ``gateway.prescriptions.describe.state`` (RX-6, RX-7: ``active``
past its validity end is expired).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, false, or_, true

from consent import PrescriptionState, SearchFilter
from gateway.storage.persons import SamePerson, nihdi_condition
from gateway.storage.records import Range
from gateway.storage.tables import resource_versions as rv


def in_range(column: ColumnElement[datetime], span: Range) -> ColumnElement[bool]:
    """``column`` (a ``UtcDateTime``: instants compare as UTC on both databases) inside the
    half-open ``span``, or outside it for ``ne``. A row without a value is in no range."""
    bounds: list[ColumnElement[bool]] = []
    if span.low is not None:
        bounds.append(column >= span.low)
    if span.high is not None:
        bounds.append(column < span.high)
    if not span.outside:
        return and_(true(), *bounds)
    if span.low is None or span.high is None:
        raise ValueError("only a closed range has an outside")
    return or_(column < span.low, column >= span.high)


def state_condition(state: PrescriptionState, now: datetime) -> ColumnElement[bool]:
    """Rows in ``state`` at ``now``; a state without a stored form matches nothing (fail closed).
    ``lifecycle`` refines the status where it does not tell the state (migration 0005)."""
    unexpired = or_(rv.c.period_end.is_(None), rv.c.period_end > now)
    in_process = rv.c.lifecycle == PrescriptionState.IN_PROCESS.value
    archived = rv.c.lifecycle == PrescriptionState.ARCHIVED.value
    if state is PrescriptionState.OPEN:
        return and_(rv.c.status == "active", unexpired, or_(rv.c.lifecycle.is_(None), ~in_process))
    if state is PrescriptionState.IN_PROCESS:
        return and_(rv.c.status == "active", unexpired, in_process)
    if state is PrescriptionState.EXPIRED:
        return or_(rv.c.status == "stopped", and_(rv.c.status == "active", ~unexpired))
    if state is PrescriptionState.DELIVERED:
        return and_(rv.c.status == "completed", or_(rv.c.lifecycle.is_(None), ~archived))
    if state is PrescriptionState.ARCHIVED:
        return and_(rv.c.status == "completed", archived)
    if state is PrescriptionState.REVOKED:
        return rv.c.status == "cancelled"
    return false()


def _visible_to_pharmacy(nihdi: str) -> ColumnElement[bool]:
    """RX-13: all pharmacies (the default, NULL), or the one named."""
    return or_(
        rv.c.pharmacy_visibility.is_(None),
        rv.c.pharmacy_visibility == "all",
        and_(rv.c.pharmacy_visibility == "one", rv.c.visible_pharmacy == nihdi),
    )


def _open_to_prescriber(search: SearchFilter) -> ColumnElement[bool]:
    """RX-14: open (the default, NULL) to prescribers other than the author; ``gmf`` to this one
    when he is in the GMF circle of the patient or of the author (``SearchFilter.gmf_*``)."""
    gmf = rv.c.prescriber_visibility == "gmf"
    if search.gmf_all:
        shown_gmf: ColumnElement[bool] = gmf
    else:
        authors = [nihdi_condition(rv.c.author_nihdi, SamePerson(p)) for p in search.gmf_authors]
        shown_gmf = and_(gmf, rv.c.author_nihdi.is_not(None), or_(false(), *authors))
    return or_(
        rv.c.prescriber_visibility.is_(None), rv.c.prescriber_visibility == "open", shown_gmf
    )


def _states(search: SearchFilter, now: datetime) -> ColumnElement[bool]:
    return or_(false(), *(state_condition(s, now) for s in sorted(search.states)))


def hidden_conditions(search: SearchFilter, now: datetime) -> list[ColumnElement[bool]]:
    """WHERE conditions equivalent to ``search.hides`` (RX-14: counted, never returned)."""
    if not (search.decision.permit and search.tells_hidden):
        return [false()]
    conditions = [_states(search, now), ~_open_to_prescriber(search)]
    if search.author_nihdi is not None:
        own = nihdi_condition(rv.c.author_nihdi, SamePerson(search.author_nihdi))
        conditions.append(or_(rv.c.author_nihdi.is_(None), ~own))
    return conditions


def access_conditions(
    search: SearchFilter, now: datetime, *, hidden: bool = False
) -> list[ColumnElement[bool]]:
    """WHERE conditions equivalent to ``search.matches`` (tests/consents/test_search_sql.py), or
    with ``hidden`` to ``search.hides``."""
    if hidden:
        return hidden_conditions(search, now)
    if not search.decision.permit:
        return [false()]
    if search.everything:
        return []
    alternatives: list[ColumnElement[bool]] = []
    if search.author_nihdi is not None:
        # The prescriber's own, under any of his competence codes (ID-7).
        alternatives.append(nihdi_condition(rv.c.author_nihdi, SamePerson(search.author_nihdi)))
    if search.others:
        conditions = [_states(search, now)]
        if search.pharmacy_nihdi is not None:
            conditions.append(_visible_to_pharmacy(search.pharmacy_nihdi))
        if search.prescribers_open:
            conditions.append(_open_to_prescriber(search))
        alternatives.append(and_(*conditions))
    return [or_(false(), *alternatives)]
