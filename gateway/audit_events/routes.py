"""``GET /fhir/AuditEvent``: who accessed a patient's data, when, why, with which outcome (docs/architecture.md
4, 8; domain SEC-5, SEC-6: patients see the accesses in their history).

The patient sees his own events (``patient`` may be left out); operators (role admin) see any
patient's, or all. Parameters: ``patient`` (``<SSIN>``, ``<ssin-system>|<SSIN>``, or
``patient:identifier=...``), ``date`` (``gateway.fhir.search.date_ranges``: instants compared
whatever their offset, Brussels days; prefixes eq, ne, gt, lt, ge, le, sa, eb; repeatable),
``_count``.
Reading the log is itself audited.

A patient's log holds the events filed under him (``writer.filed_under``): what others did with
his data, and what he did himself, refused probes of another person's data included. He sees
each event through ``writer.patient_view``: no other person's SSIN, ever (SEC-6).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from consent import Action, PatientFacts, Resource, ResourceKind
from gateway.access.guard import NO_PATIENT, Event, Guard, RequestInfo, request_info
from gateway.audit.log import AuditLog
from gateway.audit.writer import RESOURCE_TYPE, filed_under_json, patient_view, safe_query
from gateway.auth.identity import Principal
from gateway.auth.scopes import require_scopes
from gateway.db import DbSession
from gateway.errors import BadRequest
from gateway.fhir import bundles, search
from gateway.fhir.responses import bundle_response, resource_response
from gateway.storage.records import StoredVersion
from gateway.storage.store import Criteria, ResourceStore

router = APIRouter(prefix=f"/{RESOURCE_TYPE}")
AuditRead = Annotated[Principal, Depends(require_scopes("system/AuditEvent.r"))]
AuditSearch = Annotated[Principal, Depends(require_scopes("system/AuditEvent.s"))]
Info = Annotated[RequestInfo, Depends(request_info)]
SEARCH_PARAMS = ("patient", "patient:identifier", "date")


def _guard(request: Request, session: DbSession, caller: Principal, info: RequestInfo) -> Guard:
    return Guard(ResourceStore(session, request.app.state.keyring), caller, info)


def _patient(request: Request, caller: Principal) -> str | None:
    params = request.query_params
    values = params.getlist("patient") + params.getlist("patient:identifier")
    if len(values) > 1:
        raise BadRequest("patient may be given once", expression="patient")
    if values:
        return search.patient_param(values[0], "patient")
    return caller.ssin if caller.role == "patient" else None  # PO-4: "who accessed my data"


def _as_seen_by(caller: Principal, stored: StoredVersion) -> StoredVersion:
    """The event as the caller may see it: operators all of it, a patient ``patient_view``.
    Without ``meta.versionId``: an event never changes, and the CapabilityStatement says
    ``no-version`` (FHIR R4 valueset-versioning-policy: no versionId is supported)."""
    event = stored.json()
    if caller.role == "patient" and caller.ssin is not None:
        event = patient_view(event, caller.ssin)
    meta = {k: v for k, v in (event.get("meta") or {}).items() if k != "versionId"}
    if meta:
        event["meta"] = meta
    else:  # FHIR JSON has no empty objects
        event.pop("meta", None)
    return replace(stored, body=orjson.dumps(event))


@router.get("")
async def search_events(
    request: Request, caller: AuditSearch, session: DbSession, info: Info
) -> Response:
    params = request.query_params
    search.check_known(params, SEARCH_PARAMS)
    guard = _guard(request, session, caller, info)
    patient = _patient(request, caller)
    # An event is never updated: its _lastUpdated is when it was recorded, its date.
    common = search.narrow(Criteria(), params)
    recorded = search.date_ranges(params.getlist("date"), "date") + common.last_updated
    settings = request.app.state.settings
    # _sort=date (or _lastUpdated) is the order events were recorded in (the chain's sequence),
    # -date the newest first (the default).
    paging = search.paging(
        params, settings.default_page_size, settings.max_page_size, {"date": "created"}
    )
    event = Event(
        "search", RESOURCE_TYPE, patient_ssin=patient, query=safe_query(params.multi_items())
    )
    access = guard.request(Action.SEARCH, ResourceKind.AUDIT)
    # An operator's search of the whole log is about no one: the decision needs no facts.
    facts = PatientFacts(NO_PATIENT) if patient is None else None
    decision = await guard.decide(access, patient, facts)
    async with guard.access(decision, event):
        page = await AuditLog(session, request.app.state.keyring).search(
            patient_ssin=patient, recorded=recorded, paging=paging, event_ids=common.logical_ids
        )
    page.items = [_as_seen_by(caller, stored) for stored in page.items]
    return bundle_response(bundles.searchset(request, RESOURCE_TYPE, page))


@router.get("/{event_id}")
async def read_event(
    request: Request, event_id: str, caller: AuditRead, session: DbSession, info: Info
) -> Response:
    guard = _guard(request, session, caller, info)
    stored = await AuditLog(session, request.app.state.keyring).read(event_id)
    patient = filed_under_json(stored.json())  # the log it is in decides who may read it
    target = Resource(ResourceKind.AUDIT, id=event_id, patient_ssin=patient)
    facts = PatientFacts(NO_PATIENT) if patient is None else None
    decision = await guard.decide(guard.request(Action.READ, target), patient, facts)
    async with guard.access(decision, Event("read", RESOURCE_TYPE, event_id, patient)):
        return resource_response(request, _as_seen_by(caller, stored))
