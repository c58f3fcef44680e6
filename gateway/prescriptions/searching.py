"""Searching prescriptions under the access rules (docs/architecture.md 4, 5; domain RX-9, RX-13, RX-17, RX-18).

Three kinds of search, each decided and audited once:

- by identifier (a RID, or the prescriber's own id): at most one match, decided as a read of that
  record; a pharmacy holding the RID takes the RID path (RX-17.1: no relationship needed, the
  visibility flag does not apply). A match the caller may not read answers like no match, an
  empty Bundle (no existence oracle), its refusal audited for the operator;
- by patient (``patient:identifier``; a patient searching without it means himself): the decision
  on the search becomes row conditions (``consent.search_filter`` -> SQL), so a hidden prescription
  is absent from the page and from ``total`` (RX-13, RX-14);
- by the pharmacy reserved at (``reserved-at``, RX-15): a pharmacy lists the reservations
  patients made at it, in process there and still open, whoever the patient
  (``permit-reservation``); another pharmacy's reservations answer like none, an empty Bundle
  (not-yours = not-there, as for identifiers). For everyone else ``reserved-at`` only narrows
  their own search;
- none of these: a prescriber lists his own prescriptions (``permit-author``); any other role is
  refused.

A pharmacy shows the patient's presence for a search by patient with the ``X-eID-Card-Number`` and
``X-eID-Read-At`` headers (RX-18 b), or relies on a registered relationship (``gateway.access.guard``).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Final

from starlette.datastructures import QueryParams

from consent import (
    AccessPath,
    Action,
    ByRid,
    Decision,
    PrescriptionState,
    Reason,
    ResourceKind,
    SearchFilter,
    search_filter,
)
from fhir_profiles import normalise_rid, systems
from fhir_profiles.issues import Issue
from fhir_profiles.patients import patient_ssin_of
from gateway.access.guard import Event, Guard
from gateway.audit.writer import safe_query
from gateway.errors import BadRequest
from gateway.fhir import search
from gateway.prescriptions import describe
from gateway.settings import Settings
from gateway.storage.persons import SamePerson
from gateway.storage.store import Access, Criteria, Page, Paging, ResourceStore

RESOURCE = "MedicationRequest"
SEARCH_PARAMS = ("identifier", "patient:identifier", "status", "authoredon", "reserved-at")
SORTS: Final = {"authoredon": "authored"}  # _sort keys besides _lastUpdated
STATUSES = frozenset(
    {
        "active",
        "on-hold",
        "cancelled",
        "completed",
        "entered-in-error",
        "stopped",
        "draft",
        "unknown",
    }
)


def identifiers_of(resource: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (str(i.get("system", "")), str(i.get("value", ""))) for i in resource.get("identifier", [])
    ]


def _identifier_param(value: str, name: str) -> tuple[str, str]:
    """A token search on identifier; a bare RID (a scanned barcode) means the RID system."""
    system, code = search.token(value, name)
    if system is None:
        rid = normalise_rid(code)
        if rid is None:
            raise BadRequest(
                f"{name} needs system|value (a bare value is accepted only for a RID)",
                expression=name,
            )
        return systems.RID, rid
    system = systems.normalise_system(system)
    if system == systems.RID:
        rid = normalise_rid(code)
        if rid is None:
            raise BadRequest(
                f"{name}: not a RID (BEP followed by 9 letters or digits)", expression=name
            )
        return system, rid
    return system, code


_ORGANISATION_NIHDI: Final = re.compile(r"^[0-9]{8,11}$")


def _reserved_at_param(value: str, name: str) -> str:
    """RX-15: the organisation NIHDI (ID-9) of the pharmacy reserved at, bare or with its system."""
    system, code = search.token(value, name)
    if system is not None and systems.normalise_system(system) not in (
        systems.NIHDI_ORGANIZATION,
        systems.NIHDI,
    ):
        raise BadRequest(f"{name}: only the organisation NIHDI system", expression=name)
    if not _ORGANISATION_NIHDI.match(code):
        raise BadRequest(f"{name}: the pharmacy's NIHDI number (8-11 digits)", expression=name)
    return code


# RX-6: the FHIR status a client searches for -> the gateway states reported with it. Statuses the
# gateway never reports (draft, on-hold, unknown) match nothing.
_REPORTED_AS: Final[dict[str, tuple[PrescriptionState, ...]]] = {
    "active": (PrescriptionState.OPEN, PrescriptionState.IN_PROCESS),
    "completed": (PrescriptionState.DELIVERED, PrescriptionState.ARCHIVED),
    "cancelled": (PrescriptionState.REVOKED,),
    "stopped": (PrescriptionState.EXPIRED,),
    "entered-in-error": (PrescriptionState.ENTERED_IN_ERROR,),
}


def _states(params: QueryParams) -> tuple[PrescriptionState, ...]:
    values = search.codes(params, "status")
    unknown = [v for v in values if v not in STATUSES]
    if unknown:
        raise BadRequest("status: unknown code", expression="status")
    # draft, on-hold, unknown: statuses the gateway never reports, so they match nothing, like
    # entered-in-error (a state with no stored form: ``filters.state_condition`` is false).
    nothing = (PrescriptionState.ENTERED_IN_ERROR,)
    return tuple(dict.fromkeys(s for v in values for s in _REPORTED_AS.get(v, nothing)))


async def search_prescriptions(
    store: ResourceStore, settings: Settings, guard: Guard, params: QueryParams
) -> Page:
    search.check_known(params, SEARCH_PARAMS)
    criteria = search.narrow(
        Criteria(
            identifier=search.optional(params, "identifier", _identifier_param),
            patient_ssin=search.optional(params, "patient:identifier", search.patient_param),
            states=_states(params),
            states_at=guard.now,
            authored=search.date_ranges(params.getlist("authoredon"), "authoredon"),
            # RX-15: the column marks a reservation's pharmacy (``transitions``)
            actor_nihdi=search.optional(params, "reserved-at", _reserved_at_param),
        ),
        params,
    )
    paging = search.paging(params, settings.default_page_size, settings.max_page_size, SORTS)
    caller = guard.caller
    if criteria.patient_ssin is None and caller.role == "patient" and criteria.identifier is None:
        # PO-4: "my prescriptions"; by identifier the read decides (another's: a refused probe)
        criteria = replace(criteria, patient_ssin=caller.ssin)
    event = Event(
        "search",
        RESOURCE,
        patient_ssin=criteria.patient_ssin,
        query=safe_query(params.multi_items()),
    )

    if criteria.identifier is not None:
        return await _by_identifier(store, guard, criteria, paging.count, event)
    if criteria.patient_ssin is not None:
        facts = await guard.facts_or_none(criteria.patient_ssin)
        if facts is None:
            # docs/architecture.md 5: fail closed
            guard.refuse(Decision(False, Reason.ERROR), event)
        asked = guard.request(Action.SEARCH, ResourceKind.PRESCRIPTION)
        rows = search_filter(asked, facts)
        decision = await guard.proven(rows.decision, asked.path, facts.ssin)  # the eID read's card
        async with guard.access(decision, event):
            narrowed = replace(criteria, access=Access(rows, guard.now))
            page = _reported(await store.page(RESOURCE, narrowed, paging), guard)
        if decision.permit and rows.tells_hidden:
            await _tell_hidden(store, guard, criteria, rows, event, page)
        return page
    if caller.role == "prescriber" and caller.nihdi:
        # Without a patient there are no facts to decide on: a prescriber lists his own
        # prescriptions, as before RX-9 (``permit-author``).
        async with guard.access(Decision(True, Reason.PERMIT_AUTHOR), event):
            mine = replace(criteria, author_nihdi=SamePerson(caller.nihdi))  # any competence code
            return _reported(await store.page(RESOURCE, mine, paging), guard)
    if caller.role == "pharmacist" and criteria.actor_nihdi is not None:
        return await _reservations(store, guard, criteria, paging, event)
    # RX-17: a pharmacy searches by RID, by patient or for its reservations; nobody else lists
    # prescriptions.
    guard.refuse(Decision(False, Reason.WRONG_ROLE), event)


async def _reservations(
    store: ResourceStore, guard: Guard, criteria: Criteria, paging: Paging, event: Event
) -> Page:
    """RX-15: the pharmacy the patient reserved at lists those reservations, with their content:
    the patient chose that pharmacy, so no consent, relationship or visibility choice is asked,
    and only while they are in process there (open: RX-17.2; an expired one is gone). Another
    pharmacy's list answers like an empty one (docs/access.md: not-yours = not-there)."""
    if criteria.actor_nihdi != guard.caller.nihdi:
        await guard.audit_unseen(Decision(False, Reason.NOT_OWN_DATA), event)
        return Page(items=[], total=0)
    rows = SearchFilter(
        Decision(True, Reason.PERMIT_RESERVATION),
        others=True,
        states=frozenset({PrescriptionState.IN_PROCESS}),
    )
    async with guard.access(rows.decision, event):
        narrowed = replace(criteria, access=Access(rows, guard.now))
        return _reported(await store.page(RESOURCE, narrowed, paging), guard)


async def _by_identifier(
    store: ResourceStore, guard: Guard, criteria: Criteria, count: int, event: Event
) -> Page:
    """At most one match (identifiers are unique per type): decided as a read of it."""
    assert criteria.identifier is not None
    page = await store.search(RESOURCE, criteria, count=max(count, 1))
    if not page.items:
        # Nothing found, nothing disclosed: audited with the reason "no-match".
        await guard.audit_no_match(event)
        return Page(items=[], total=0)
    system, value = criteria.identifier
    path: AccessPath | None = None
    if guard.caller.role == "pharmacist" and system == systems.RID:
        path = ByRid(value)  # RX-13, RX-17.1: the RID stands for the patient's presence
    stored = page.items[0]
    resource = stored.json()
    ssin = patient_ssin_of(resource)
    target = describe.resource_of(stored, resource, ssin, guard.now)
    decision = await guard.decide(guard.request(Action.READ, target, path=path), ssin)
    event.resource_id, event.patient_ssin = stored.logical_id, ssin
    if not decision.permit:
        await guard.audit_unseen(decision, event)
        return Page(items=[], total=0)
    async with guard.access(decision, event):
        if decision.reason is Reason.PERMIT_RID_STATUS:
            # docs/architecture.md 5, RX-6 getPrescriptionStatus: the state of one no longer open, no content
            return Page(items=[describe.status_only(stored, guard.now, resource)], total=1)
        return Page(items=[describe.as_reported(stored, guard.now, resource)], total=1)


async def _tell_hidden(
    store: ResourceStore,
    guard: Guard,
    criteria: Criteria,
    rows: SearchFilter,
    event: Event,
    page: Page,
) -> None:
    """RX-14: a physician who cannot open a prescription the patient hid from him is told that it
    exists, not what it is: how many of those the search matched, in an OperationOutcome entry of
    the Bundle (search.mode outcome), counted in SQL like the matches. That he was kept from them
    is audited (``hidden-by-patient``), so the patient sees it in his access log."""
    counted = await store.search(
        RESOURCE, replace(criteria, access=Access(rows, guard.now, hidden=True)), count=0
    )
    hidden = counted.total or 0
    if not hidden:
        return
    page.notes = (*page.notes, hidden_note(hidden))
    told = Event("search", RESOURCE, patient_ssin=event.patient_ssin, query=event.query)
    await guard.audit(Decision(False, Reason.HIDDEN_BY_PATIENT), told)


def hidden_note(hidden: int) -> Issue:
    """What RX-14 tells: a number, no content, no id."""
    verb = "is" if hidden == 1 else "are"
    noun = "prescription" if hidden == 1 else "prescriptions"
    return Issue(
        severity="information",
        code="suppressed",
        expression="",
        diagnostics=f"{hidden} {noun} of this patient matching this search {verb} hidden from "
        "you by the patient's choice",
        rule="RX-14",
    )


def _reported(page: Page, guard: Guard) -> Page:
    """RX-7: expired prescriptions in a page read as ``stopped`` (``describe.as_reported``)."""
    page.items = [describe.as_reported(stored, guard.now) for stored in page.items]
    return page
