"""``GET /fhir/Consent``: a patient's consent records under the access rules.

Parameters: ``patient:identifier`` (SSIN; a patient without it means himself), ``actor`` (the
provider's NIHDI: ``actor=<nihdi>``, ``actor=<system>|<nihdi>`` or ``actor:identifier=...``),
``category`` (codes of ``urn:ehealth-gateway:consent-kind``, comma = OR) and ``status``; or
``identifier=<system>|<value>`` (an identifier the registering software gave the record).

By identifier: at most one match, decided as a read of that record; a match the caller may not
read answers like no match, an empty Bundle (no existence oracle), its refusal audited.

The search is decided once per category asked for (default: all three). A patient sees all his
records (PO-4). A provider who shows the patient's presence (eID headers) sees the informed
consent and its own relationships with the patient, not the others' (they tell who else treats
the patient) nor the exclusions (the patient's alone): ``consent.policy._on_consent_record``.
The rows are narrowed in SQL, so ``total`` counts only what may be seen.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from starlette.datastructures import QueryParams

from consent import Action, Decision, PatientFacts, Reason, Resource, ResourceKind
from fhir_profiles import systems
from fhir_profiles.patients import patient_ssin_of
from gateway.access.facts import CATEGORIES, MANDATE, RELATIONSHIP, RESOURCE
from gateway.access.guard import NO_PATIENT, Event, Guard
from gateway.audit.writer import safe_query
from gateway.consents.shapes import KIND_OF_CATEGORY, KIND_SYSTEM
from gateway.errors import BadRequest
from gateway.fhir import search
from gateway.settings import Settings
from gateway.storage.persons import provider_match
from gateway.storage.store import Criteria, Page, ResourceStore, StoredVersion

SEARCH_PARAMS = (
    "identifier",
    "patient:identifier",
    "actor",
    "actor:identifier",
    "category",
    "status",
)
# The gateway's own uniqueness tokens (``service.ACTIVE_CONSENT``...) are no client identifiers.
_INTERNAL_SYSTEMS = "urn:ehealth-gateway:"
_STATUSES = frozenset({"active", "inactive"})
_NIHDI = re.compile(r"^[0-9]{8,11}$")


def _actor(params: QueryParams) -> str | None:
    values = params.getlist("actor") + params.getlist("actor:identifier")
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest("actor may be given once", expression="actor")
    system, value = search.token(values[0], "actor")
    if system is not None and systems.normalise_system(system) not in (
        systems.NIHDI,
        systems.NIHDI_PROFESSIONAL,
        systems.NIHDI_ORGANIZATION,
    ):
        raise BadRequest("actor: an NIHDI number", expression="actor")
    if not _NIHDI.match(value):
        raise BadRequest("actor: an NIHDI number (8-11 digits)", expression="actor")
    return value


def _categories(params: QueryParams) -> tuple[str, ...]:
    found: list[str] = []
    for raw in params.getlist("category"):
        for value in filter(None, raw.split(",")):
            system, code = search.token(value, "category")
            if (system not in (None, KIND_SYSTEM)) or code not in CATEGORIES:
                raise BadRequest(
                    "category: " + ", ".join(CATEGORIES) + f" (system {KIND_SYSTEM})",
                    expression="category",
                )
            found.append(code)
    return tuple(dict.fromkeys(found)) or CATEGORIES


def _statuses(params: QueryParams) -> tuple[str, ...]:
    values = search.codes(params, "status")
    if any(v not in _STATUSES for v in values):
        raise BadRequest("status: active or inactive", expression="status")
    return tuple(values)


def _identifier(params: QueryParams | Any) -> tuple[str, str] | None:
    value = search.single(params, "identifier")
    if value is None:
        return None
    system, code = search.token(value, "identifier")
    if not system or system.startswith(_INTERNAL_SYSTEMS):
        raise BadRequest(
            "identifier needs the system|value the record was given", expression="identifier"
        )
    return system, code


def described(stored: StoredVersion, ssin: str | None) -> Resource:
    """What ``consent.decide`` needs of a stored Consent: its kind (by category), its patient
    and the provider its provision names; a proxy mandate's holder (RX-16), from its body."""
    holder = None
    if stored.columns.category == MANDATE and stored.columns.holder_hmac is not None:
        actors = (stored.json().get("provision") or {}).get("actor") or [{}]
        holder = ((actors[0].get("reference") or {}).get("identifier") or {}).get("value")
    return Resource(
        KIND_OF_CATEGORY[stored.columns.category or ""],
        id=stored.logical_id,
        patient_ssin=ssin,
        provider_nihdi=stored.columns.actor_nihdi,
        holder_ssin=holder,
    )


async def _by_identifier(
    store: ResourceStore, guard: Guard, criteria: Criteria, event: Event
) -> Page:
    """At most one match (identifiers are unique per type): decided as a read of it."""
    page = await store.search(RESOURCE, criteria, count=1)
    if not page.items:
        await guard.audit_no_match(event)  # nothing found, nothing disclosed
        return Page(items=[], total=0)
    stored = page.items[0]
    ssin = patient_ssin_of(stored.json())
    decision = await guard.decide(guard.request(Action.READ, described(stored, ssin)), ssin)
    event.resource_id, event.patient_ssin = stored.logical_id, ssin
    if not decision.permit:
        await guard.audit_unseen(decision, event)  # answered like a miss
        return Page(items=[], total=0)
    async with guard.access(decision, event):
        return Page(items=[stored], total=1)


def _holder(params: QueryParams, caller: Any) -> Criteria | None:
    """RX-16: ``category=mandate&actor:identifier=<system>|<holder>`` without a patient: the
    mandates the caller holds, a patient by his SSIN, a pharmacy by its organisation NIHDI.
    ``None``: not this search. Another holder's are refused (``not-own-data``)."""
    values = params.getlist("actor") + params.getlist("actor:identifier")
    if params.getlist("patient:identifier") or params.getlist("identifier") or not values:
        return None
    if _categories(params) != (MANDATE,):
        return None
    if len(values) > 1:
        raise BadRequest("actor may be given once", expression="actor")
    system, value = search.token(values[0], "actor")
    canonical = systems.normalise_system(system) if system else None
    if canonical == systems.SSIN or (system is None and caller.role == "patient"):
        holder = search.patient_param(values[0], "actor")
        if caller.role != "patient" or holder != caller.ssin:
            raise _NotYours
        return Criteria(categories=(MANDATE,), holder_hmac=holder)
    if canonical not in (None, systems.NIHDI_ORGANIZATION) or not _NIHDI.match(value):
        raise BadRequest(
            "actor: the holder's SSIN or a pharmacy's organisation NIHDI", expression="actor"
        )
    if caller.role != "pharmacist" or value != caller.nihdi:
        raise _NotYours
    return Criteria(categories=(MANDATE,), actor_nihdi=value)


class _NotYours(Exception):
    """A search of the mandates someone else holds."""


async def _held(
    store: ResourceStore,
    settings: Settings,
    guard: Guard,
    params: QueryParams | Any,
    criteria: Criteria,
    event: Event,
) -> Page:
    """The mandates the caller holds, any mandator (RX-16): decided as a search of mandates
    (``permit-mandate``: own only), narrowed in SQL to his own."""
    decision = await guard.decide(
        guard.request(Action.SEARCH, ResourceKind.MANDATE), None, PatientFacts(NO_PATIENT)
    )
    if criteria.holder_hmac is not None:  # the clear SSIN is hashed as patient_hmac is
        criteria = replace(criteria, holder_hmac=store.ssin_hash(criteria.holder_hmac))
    criteria = replace(criteria, statuses=_statuses(params))
    paging = search.paging(params, settings.default_page_size, settings.max_page_size)
    async with guard.access(decision, event):
        return await store.page(RESOURCE, search.narrow(criteria, params), paging)


async def search_consents(
    store: ResourceStore, settings: Settings, guard: Guard, params: QueryParams | Any
) -> Page:
    search.check_known(params, SEARCH_PARAMS)
    ssin = search.single(params, "patient:identifier")
    patient = search.patient_param(ssin, "patient:identifier") if ssin is not None else None
    caller = guard.caller
    event = Event("search", RESOURCE, patient_ssin=None, query=safe_query(params.multi_items()))
    try:
        held = _holder(params, caller)
    except _NotYours:
        guard.refuse(Decision(False, Reason.NOT_OWN_DATA), event)
    if held is not None:
        return await _held(store, settings, guard, params, held, event)
    identifier = _identifier(params)
    if patient is None and caller.role == "patient" and identifier is None:
        patient = caller.ssin  # PO-4: "my consents" (by identifier: the read decides)
    event = Event("search", RESOURCE, patient_ssin=patient, query=safe_query(params.multi_items()))
    if identifier is not None:
        search.paging(params, settings.default_page_size, settings.max_page_size)  # checked only
        criteria = search.narrow(
            Criteria(
                identifier=identifier,
                patient_ssin=patient,
                categories=_categories(params) if params.getlist("category") else (),
                statuses=_statuses(params),
                actor_nihdi=_actor(params),
            ),
            params,
        )
        return await _by_identifier(store, guard, criteria, event)
    if patient is None:
        raise BadRequest(
            "patient:identifier=<ssin-system>|<SSIN> is required", expression="patient"
        )
    asked = _categories(params)
    facts = await guard.facts_or_none(patient)
    if facts is None:
        guard.refuse(Decision(False, Reason.ERROR), event)  # docs/architecture.md 5: fail closed
    decisions = {
        category: await guard.decide(
            guard.request(Action.SEARCH, KIND_OF_CATEGORY[category]), patient, facts
        )
        for category in asked
    }
    allowed = tuple(c for c in asked if decisions[c].permit)
    if MANDATE in allowed and caller.ssin != patient:
        # RX-16: only the mandator lists his mandates; a holder lists those he holds (_held).
        allowed = tuple(c for c in allowed if c != MANDATE)
        if not allowed:
            guard.refuse(Decision(False, Reason.NOT_OWN_DATA), event)
    decision = decisions[allowed[0]] if allowed else decisions[asked[0]]
    criteria = Criteria(
        patient_ssin=patient,
        categories=allowed,
        statuses=_statuses(params),
        actor_nihdi=_actor(params),
    )
    if caller.role != "patient" and RELATIONSHIP in allowed:
        own = provider_match(caller.role, caller.nihdi or "")  # a prescriber: the person (ID-7)
        criteria = replace(criteria, own_relationships_of=own)
    paging = search.paging(params, settings.default_page_size, settings.max_page_size)
    async with guard.access(decision, event):
        return await store.page(RESOURCE, search.narrow(criteria, params), paging)
