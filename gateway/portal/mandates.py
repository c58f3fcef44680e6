"""My mandates and acting for someone (RX-16, PO-3, PO-4; docs/access.md, mandates).

A mandate is a FHIR ``Consent`` of category ``mandate`` (README API notes): the patient gives one to
a person (``proxy``, by SSIN) or to a pharmacy (``professional``, its organisation NIHDI, collect
and view only), names what it allows (collect, view, manage) and from when to when, and ends it
with an update to ``inactive``. All through the FHIR API with the patient's token, so the API
decides and audits every step; the portal only chooses what to ask.

Acting for: the holder picks one of the mandates he holds; the session then remembers whom he acts
for and what the mandate allows, every page says so in a banner, and the mandator's prescriptions
are searched by his SSIN (``patient:identifier``), which the API permits only under that mandate
(``permit-mandate``, audited with both SSINs). The session's choice is a convenience: the API
decides each call again.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Any

from fastapi import APIRouter, Response

from fhir_profiles import is_valid_ssin, normalise_ssin, systems
from fhir_profiles.dates import BRUSSELS, brussels_date
from gateway.portal import api, directory, views
from gateway.portal.context import Patient, Portal, PortalRefusal
from gateway.portal.i18n import N_
from gateway.portal.routing import PortalRoute
from gateway.portal.session import PortalSession

router = APIRouter(route_class=PortalRoute)

MANDATE = "mandate"
ACTION_SYSTEM = "urn:ehealth-gateway:mandate-action"
ROLE_SYSTEM = "urn:ehealth-gateway:mandate-role"
ACTIONS = ("collect", "view", "manage")
PROFESSIONAL_ACTIONS = ("collect", "view")  # RX-16 [decided]: a pharmacy never manages
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
PAGE_SIZE = 50


def _coding_codes(concepts: Any, system: str) -> list[str]:
    codes: list[str] = []
    for concept in concepts if isinstance(concepts, list) else [concepts]:
        if not isinstance(concept, dict):
            continue
        for coding in concept.get("coding") or ():
            if isinstance(coding, dict) and coding.get("system") == system and coding.get("code"):
                codes.append(str(coding["code"]))
    return codes


def mandate_row(resource: dict[str, Any]) -> dict[str, Any]:
    """The row the mandates page shows (a missing element shows as empty)."""
    provision = resource.get("provision") if isinstance(resource.get("provision"), dict) else {}
    assert isinstance(provision, dict)
    actors = provision.get("actor") if isinstance(provision.get("actor"), list) else []
    actor = actors[0] if actors and isinstance(actors[0], dict) else {}
    reference = actor.get("reference") if isinstance(actor.get("reference"), dict) else {}
    identifier = reference.get("identifier") if isinstance(reference, dict) else {}
    identifier = identifier if isinstance(identifier, dict) else {}
    roles = _coding_codes(actor.get("role"), ROLE_SYSTEM)
    holder = str(identifier.get("value") or "")
    professional = (roles[0] if roles else "") == "professional" or (
        identifier.get("system") == systems.NIHDI_ORGANIZATION
    )
    period = provision.get("period") if isinstance(provision.get("period"), dict) else {}
    assert isinstance(period, dict)
    patient = resource.get("patient") if isinstance(resource.get("patient"), dict) else {}
    assert isinstance(patient, dict)
    mandator = patient.get("identifier") if isinstance(patient.get("identifier"), dict) else {}
    assert isinstance(mandator, dict)
    return {
        "id": str(resource.get("id") or ""),
        "status": str(resource.get("status") or ""),
        "mandator": str(mandator.get("value") or ""),
        "holder": holder,
        "professional": professional,
        "actions": [
            a for a in ACTIONS if a in _coding_codes(provision.get("action"), ACTION_SYSTEM)
        ],
        "start": str(period.get("start") or ""),
        "end": str(period.get("end") or ""),
    }


def _subject(resource: dict[str, Any]) -> str:
    subject = resource.get("subject") if isinstance(resource.get("subject"), dict) else {}
    identifier = subject.get("identifier") if isinstance(subject, dict) else None
    patient = identifier.get("value") if isinstance(identifier, dict) else None
    return patient if isinstance(patient, str) else ""


def for_mandator(session: PortalSession, resource: dict[str, Any]) -> bool:
    """Whether a prescription is that of the person the holder acts for."""
    return bool(session.acting_for) and _subject(resource) == session.acting_for


def may_manage(session: PortalSession, resource: dict[str, Any]) -> bool:
    """Whether a prescription's page offers reserve, delete and visibility: the patient's own, or
    his mandator's under a mandate naming ``manage`` (RX-16; the API decides each call again)."""
    patient = _subject(resource)
    if patient and patient == session.ssin:
        return True
    return for_mandator(session, resource) and "manage" in session.acting_actions


async def _mandates(portal: Portal, **params: str) -> list[dict[str, Any]]:
    bundle = await portal.fhir.get("Consent", {"category": MANDATE, "_count": 200, **params})
    return [mandate_row(r) for r in api.entries(bundle)]


def _held_params(portal: Portal) -> dict[str, str]:
    return {"actor:identifier": f"{systems.SSIN}|{portal.signed_in.ssin}"}


@router.get("/mandates")
async def mandates(portal: Patient) -> Response:
    given = await _mandates(portal)
    held = await _mandates(portal, **_held_params(portal))
    providers = await directory.providers(portal.request)
    return await portal.page(
        "mandates.html",
        given=given,
        held=held,
        pharmacies=[p for p in providers if p.role == "pharmacist"],
        names=directory.names(providers),
        actions=ACTIONS,
        today=brussels_date(portal.request.app.state.clock()).isoformat(),
    )


def _field(form: Any, name: str, size: int = 64) -> str:
    value = form.get(name)
    return value.strip()[:size] if isinstance(value, str) else ""


def _instant(day: str, at: time) -> str:
    return datetime.combine(date.fromisoformat(day), at, BRUSSELS).isoformat()


def _day(value: str) -> str | None:
    try:
        return date.fromisoformat(value).isoformat() if value else None
    except ValueError:
        return None


@router.post("/mandates")
async def give_mandate(portal: Patient) -> Response:
    """A new mandate of the signed-in patient (he alone gives his own, RX-16)."""
    form = await portal.form()
    back = "/portal/mandates"
    kind = _field(form, "holder_kind")
    chosen = [a for a in ACTIONS if a in form.getlist("action")]
    start, end = _day(_field(form, "start")), _day(_field(form, "end"))
    if kind == "person":
        holder = normalise_ssin(_field(form, "holder_ssin", 32))
        if not is_valid_ssin(holder) or holder == portal.signed_in.ssin:
            portal.flash(N_("Enter the national register number of the person."), "error")
            return await portal.redirect(back)
        identifier = {"system": systems.SSIN, "value": holder}
        role = "proxy"
    elif kind == "pharmacy":
        holder = _field(form, "pharmacy")
        known = {
            p.nihdi for p in await directory.providers(portal.request) if p.role == "pharmacist"
        }
        if holder not in known:
            portal.flash(N_("Choose the pharmacy."), "error")
            return await portal.redirect(back)
        identifier = {"system": systems.NIHDI_ORGANIZATION, "value": holder}
        role = "professional"
        chosen = [a for a in chosen if a in PROFESSIONAL_ACTIONS]
    else:
        raise PortalRefusal(400, N_("The request could not be understood."))
    if not chosen:
        portal.flash(N_("Choose what the mandate allows."), "error")
        return await portal.redirect(back)
    if start is None or (_field(form, "end") and end is None) or (end and end < start):
        portal.flash(N_("Enter dates as YYYY-MM-DD."), "error")
        return await portal.redirect(back)
    # The API takes instants with a zone (CO-7): the chosen days, whole, in Brussels.
    period = {"start": _instant(start, time())}
    if end:
        period["end"] = _instant(end, time(23, 59, 59))
    body = {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [{"coding": [{"system": views.KIND_SYSTEM, "code": MANDATE}]}],
        "patient": {"identifier": {"system": systems.SSIN, "value": portal.signed_in.ssin}},
        "provision": {
            "type": "permit",
            "period": period,
            "actor": [
                {
                    "role": {"coding": [{"system": ROLE_SYSTEM, "code": role}]},
                    "reference": {"identifier": identifier},
                }
            ],
            "action": [{"coding": [{"system": ACTION_SYSTEM, "code": a}]} for a in chosen],
        },
    }
    try:
        await portal.fhir.post("Consent", body)
    except api.ApiError as exc:
        if exc.status in (400, 409, 412, 422):
            portal.flash(N_("This change was not accepted."), "error")
            return await portal.redirect(back)
        raise
    portal.flash(N_("The mandate has been given."))
    return await portal.redirect(back)


def _id(value: str) -> str:
    if not _ID.match(value):
        raise PortalRefusal(404, N_("This page does not exist."))
    return value


@router.post("/mandates/{logical_id}/end")
async def end_mandate(portal: Patient, logical_id: str) -> Response:
    """The mandator, or the holder himself, ends a mandate: an update to ``inactive``."""
    await portal.form()
    logical_id = _id(logical_id)
    body = {"resourceType": "Consent", "id": logical_id, "status": "inactive"}
    try:
        await portal.fhir.put(f"Consent/{logical_id}", body)
    except api.ApiError as exc:
        if exc.status in (400, 409, 412, 422):
            portal.flash(N_("This change was not accepted."), "error")
            return await portal.redirect("/portal/mandates")
        raise
    if portal.signed_in.acting_for_mandate == logical_id:
        portal.signed_in.stop_acting()
    portal.flash(N_("The mandate has ended."))
    return await portal.redirect("/portal/mandates")


# -- acting for someone (PO-4) -------------------------------------------------------------------


@router.post("/acting-for")
async def act_for(portal: Patient) -> Response:
    """Choose a mandate I hold: from now on the pages are about its mandator."""
    form = await portal.form()
    logical_id = _id(_field(form, "mandate"))
    row = mandate_row(await portal.fhir.get(f"Consent/{logical_id}"))
    session = portal.signed_in
    if row["status"] != "active" or row["holder"] != session.ssin or not row["mandator"]:
        portal.flash(N_("This mandate is not active."), "error")
        return await portal.redirect("/portal/mandates")
    session.acting_for = row["mandator"]
    session.acting_for_mandate = logical_id
    session.acting_actions = list(row["actions"])
    return await portal.redirect("/portal/acting-for")


@router.post("/acting-for/child")
async def act_for_child(portal: Patient) -> Response:
    """A parent acts for his child under 12 (PO-3). The family links are kept as hashes (nobody,
    the portal included, can list a parent's children): the parent types the child's number and
    the API decides (``permit-parent``); a refusal sends him back with one message."""
    form = await portal.form()
    child = normalise_ssin(_field(form, "child", 20))
    session = portal.signed_in
    if not is_valid_ssin(child) or child == session.ssin:
        portal.flash(N_("This is not a valid national register number."), "error")
        return await portal.redirect("/portal/mandates")
    try:
        await portal.fhir.get(
            "MedicationRequest",
            {"patient:identifier": f"{systems.SSIN}|{child}", "_summary": "count"},
        )
    except api.ApiError as exc:
        if exc.status != 403:
            raise
        portal.flash(
            N_(
                "You cannot act for this child: you are not registered as a parent of a child under 12 with this number."
            ),
            "error",
        )
        return await portal.redirect("/portal/mandates")
    session.acting_for = child
    session.acting_for_mandate = None
    session.acting_actions = list(ACTIONS)  # PO-3: a parent does all a mandate could grant
    return await portal.redirect("/portal/acting-for")


@router.post("/acting-for/stop")
async def stop_acting(portal: Patient) -> Response:
    await portal.form()
    portal.signed_in.stop_acting()
    return await portal.redirect("/portal/mandates")


@router.get("/acting-for")
async def acting_for(portal: Patient) -> Response:
    """The mandator's prescriptions, searched by his SSIN; the API decides (view or collect)."""
    session = portal.signed_in
    if not session.acting_for:
        return await portal.redirect("/portal/mandates")
    params = {
        "patient:identifier": f"{systems.SSIN}|{session.acting_for}",
        "_count": PAGE_SIZE,
    }
    if "view" not in session.acting_actions:
        params["status"] = "active"  # collect: the open prescriptions only
    try:
        bundle = await portal.fhir.get("MedicationRequest", params)
    except api.ApiError as exc:
        if exc.status != 403:
            raise
        # Ended or expired since it was chosen (the API refuses, not-own-data): back to himself.
        session.stop_acting()
        portal.flash(N_("This mandate is not active."), "error")
        return await portal.redirect("/portal/mandates")
    providers = await directory.providers(portal.request)
    return await portal.page(
        "acting_for.html",
        prescriptions=[views.prescription(r) for r in api.entries(bundle)],
        names=directory.names(providers),
    )
