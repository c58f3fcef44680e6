"""The portal's pages (docs/architecture.md 7; domain PO-2): every read and every change is a call to the
gateway's FHIR API with the patient's token (``api.Fhir``), so a patient who types another
patient's id into a URL gets the API's 403 (``not-own-data``, PO-4) as a 403 page, and every
action lands in the audit log the patient can read."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Response
from starlette.datastructures import FormData

from fhir_profiles import systems
from fhir_profiles.dates import brussels_date
from gateway.portal import api, directory, mandates, views
from gateway.portal.api import ApiError
from gateway.portal.barcode import svg
from gateway.portal.context import Patient, Portal, PortalRefusal
from gateway.portal.i18n import N_
from gateway.portal.routing import PortalRoute
from gateway.portal.security import security_headers

router = APIRouter(route_class=PortalRoute)

PAGE_SIZE = 50
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_NIHDI = re.compile(r"^[0-9]{8,11}$")
_CURSOR = re.compile(r"^[A-Za-z0-9\-_=.]{1,512}$")
KIND_SYSTEM = views.KIND_SYSTEM


def _id(value: str) -> str:
    if not _ID.match(value):
        raise PortalRefusal(404, N_("This page does not exist."))
    return value


def _cursor(value: str | None) -> dict[str, str]:
    return {"_cursor": value} if value and _CURSOR.match(value) else {}


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip()[:64] if isinstance(value, str) else ""


async def _change(portal: Portal, action: Any, done: str, back: str) -> Response:
    """Run a change through the API; a refusal the patient can act on becomes a message on the
    page, a 403 stays a 403 page (another patient's resource)."""
    try:
        await action
    except ApiError as exc:
        if exc.status in (400, 409, 412, 422):
            portal.flash(N_("This change was not accepted."), "error")
            return await portal.redirect(back)
        raise
    portal.flash(done)
    return await portal.redirect(back)


# -- overview ------------------------------------------------------------------------------------


async def overview(portal: Portal) -> Response:
    fhir = portal.fhir
    open_rx = await fhir.get("MedicationRequest", {"status": "active", "_count": 1})
    consents = await fhir.get("Consent", {"category": "informed-consent", "status": "active"})
    # The last 30 Brussels days (the API reads a date without a zone as a Brussels day).
    since = (brussels_date(datetime.now(UTC)) - timedelta(days=30)).isoformat()
    events = await fhir.get("AuditEvent", {"date": f"ge{since}", "_count": 200})
    others = [e for e in map(views.access, api.entries(events)) if not e.who_is_patient]
    providers = await directory.providers(portal.request)
    return await portal.page(
        "overview.html",
        open_count=int(open_rx.get("total") or 0),
        consent_active=bool(api.entries(consents)),
        accesses=others[:5],
        names=directory.names(providers),
    )


@router.get("/overview")
async def overview_page(portal: Patient) -> Response:
    return await overview(portal)


# -- prescriptions (RX-13, RX-14, PO-2) ----------------------------------------------------------


@router.get("/prescriptions")
async def prescriptions(portal: Patient, cursor: str | None = None) -> Response:
    bundle = await portal.fhir.get("MedicationRequest", {"_count": PAGE_SIZE, **_cursor(cursor)})
    providers = await directory.providers(portal.request)
    return await portal.page(
        "prescriptions.html",
        prescriptions=[views.prescription(r) for r in api.entries(bundle)],
        total=int(bundle.get("total") or 0),
        next_cursor=api.next_cursor(bundle),
        names=directory.names(providers),
    )


@router.get("/prescriptions/{logical_id}")
async def prescription(portal: Patient, logical_id: str) -> Response:
    resource = await portal.fhir.get(f"MedicationRequest/{_id(logical_id)}")
    providers = await directory.providers(portal.request)
    return await portal.page(
        "prescription.html",
        rx=views.prescription(resource),
        may_manage=mandates.may_manage(portal.signed_in, resource),
        for_mandator=mandates.for_mandator(portal.signed_in, resource),
        pharmacies=[p for p in providers if p.role == "pharmacist"],
        names=directory.names(providers),
    )


@router.get("/prescriptions/{logical_id}/barcode.svg")
async def barcode(portal: Patient, logical_id: str) -> Response:
    resource = await portal.fhir.get(f"MedicationRequest/{_id(logical_id)}")
    rid = views.rid_of(resource)
    if not rid:
        raise PortalRefusal(404, N_("This page does not exist."))
    await portal.keep(Response())
    return Response(svg(rid), media_type="image/svg+xml", headers=security_headers())


@router.post("/prescriptions/{logical_id}/visibility")
async def set_visibility(portal: Patient, logical_id: str) -> Response:
    """docs/architecture.md 4c ``$set-visibility``: all / one named / no pharmacy (RX-13), open / closed /
    the GMF practices for other prescribers (RX-14)."""
    form = await portal.form()
    logical_id = _id(logical_id)
    pharmacies = _field(form, "pharmacies")
    prescribers = _field(form, "prescribers")
    if pharmacies not in ("all", "one", "none") or prescribers not in ("open", "closed", "gmf"):
        raise PortalRefusal(400, N_("The request could not be understood."))
    parameters: list[dict[str, Any]] = [
        {"name": "pharmacies", "valueCode": pharmacies},
        {"name": "prescribers", "valueCode": prescribers},
    ]
    if pharmacies == "one":
        pharmacy = _field(form, "pharmacy")
        if not _NIHDI.match(pharmacy):
            portal.flash(N_("Choose the pharmacy that may see this prescription."), "error")
            return await portal.redirect(f"/portal/prescriptions/{logical_id}")
        parameters.append(
            {
                "name": "pharmacy",
                "valueIdentifier": {"system": systems.NIHDI_ORGANIZATION, "value": pharmacy},
            }
        )
    body = {"resourceType": "Parameters", "parameter": parameters}
    return await _change(
        portal,
        portal.fhir.post(f"MedicationRequest/{logical_id}/$set-visibility", body),
        N_("Visibility saved."),
        f"/portal/prescriptions/{logical_id}",
    )


# -- deletion and reservation (RX-7 "verwijderen", RX-15) ---------------------------------------


def _operation(body: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A Parameters body; FHIR JSON has no empty arrays, so no parameters means no element."""
    return {"resourceType": "Parameters", **({"parameter": body} if body else {})}


@router.get("/prescriptions/{logical_id}/delete")
async def confirm_delete(portal: Patient, logical_id: str) -> Response:
    """The confirmation step before ``$delete-by-patient``: deleting cannot be undone."""
    resource = await portal.fhir.get(f"MedicationRequest/{_id(logical_id)}")
    rx = views.prescription(resource)
    if rx.state != "open":
        portal.flash(N_("Only an open prescription can be deleted."), "error")
        return await portal.redirect(f"/portal/prescriptions/{rx.id}")
    providers = await directory.providers(portal.request)
    return await portal.page("prescription_delete.html", rx=rx, names=directory.names(providers))


@router.post("/prescriptions/{logical_id}/delete")
async def delete(portal: Patient, logical_id: str) -> Response:
    """docs/pharmacy.md ``$delete-by-patient``: cancelled, and the author sees that the patient
    deleted it; refused (409) once a pharmacy holds it."""
    await portal.form()
    logical_id = _id(logical_id)
    return await _change(
        portal,
        portal.fhir.post(f"MedicationRequest/{logical_id}/$delete-by-patient", _operation()),
        N_("The prescription has been deleted."),
        f"/portal/prescriptions/{logical_id}",
    )


@router.post("/prescriptions/{logical_id}/reserve")
async def reserve(portal: Patient, logical_id: str) -> Response:
    """``$reserve`` at one of the pharmacies the gateway knows (the registered pharmacist
    clients, ``directory``): in process there until the patient cancels (RX-15)."""
    form = await portal.form()
    logical_id = _id(logical_id)
    pharmacy = _field(form, "pharmacy")
    known = {p.nihdi for p in await directory.providers(portal.request) if p.role == "pharmacist"}
    if pharmacy not in known:
        portal.flash(N_("Choose the pharmacy where you want to collect it."), "error")
        return await portal.redirect(f"/portal/prescriptions/{logical_id}")
    identifier = {"system": systems.NIHDI_ORGANIZATION, "value": pharmacy}
    body = _operation([{"name": "pharmacy", "valueIdentifier": identifier}])
    return await _change(
        portal,
        portal.fhir.post(f"MedicationRequest/{logical_id}/$reserve", body),
        N_("The prescription is reserved."),
        f"/portal/prescriptions/{logical_id}",
    )


@router.post("/prescriptions/{logical_id}/reservation/cancel")
async def cancel_reservation(portal: Patient, logical_id: str) -> Response:
    """``$release`` by the patient: ends his own reservation only (RX-15; a pharmacy's own
    taking in process is refused by the API, 409)."""
    await portal.form()
    logical_id = _id(logical_id)
    return await _change(
        portal,
        portal.fhir.post(f"MedicationRequest/{logical_id}/$release", _operation()),
        N_("The reservation has been cancelled."),
        f"/portal/prescriptions/{logical_id}",
    )


# -- attestations and reimbursements (AT-1, AT-5) ------------------------------------------------


@router.get("/attestations")
async def attestations(portal: Patient, cursor: str | None = None) -> Response:
    claims = await portal.fhir.get("Claim", {"_count": PAGE_SIZE, **_cursor(cursor)})
    answers = api.entries(await portal.fhir.get("ClaimResponse", {"_count": 200}))
    by_claim = {views.claim_of(r): r for r in answers}
    providers = await directory.providers(portal.request)
    return await portal.page(
        "attestations.html",
        attestations=[
            views.attestation(claim, by_claim.get(str(claim.get("id"))))
            for claim in api.entries(claims)
        ],
        next_cursor=api.next_cursor(claims),
        names=directory.names(providers),
        # maximum billing: the household's counter as the fund last stated it on a settlement
        ceiling=views.household_ceiling(answers),
    )


# -- consent (CO-1..CO-4) ------------------------------------------------------------------------


async def _add(
    portal: Portal, category: str, done: str, back: str, provision: dict[str, Any] | None = None
) -> Response:
    """Give consent, exclude a provider: a new active Consent of the signed-in patient."""
    body: dict[str, Any] = {
        "resourceType": "Consent",
        "status": "active",
        "category": [{"coding": [{"system": KIND_SYSTEM, "code": category}]}],
        "patient": {"identifier": {"system": systems.SSIN, "value": portal.signed_in.ssin}},
    }
    if provision is not None:
        body["provision"] = provision
    return await _change(portal, portal.fhir.post("Consent", body), done, back)


async def _records(portal: Portal, category: str) -> list[views.ConsentRecord]:
    bundle = await portal.fhir.get("Consent", {"category": category, "_count": 200})
    return [views.consent_record(r) for r in api.entries(bundle)]


async def _deactivate(portal: Portal, logical_id: str, done: str, back: str) -> Response:
    """Withdraw, lift, end (docs/architecture.md 4c): an update to ``status`` ``inactive``."""
    await portal.form()
    logical_id = _id(logical_id)
    body = {"resourceType": "Consent", "id": logical_id, "status": "inactive"}
    return await _change(portal, portal.fhir.put(f"Consent/{logical_id}", body), done, back)


@router.get("/consent")
async def consent(portal: Patient) -> Response:
    records = await _records(portal, "informed-consent")
    active = next((r for r in records if r.status == "active"), None)
    return await portal.page("consent.html", active=active, records=records)


@router.post("/consent")
async def give_consent(portal: Patient) -> Response:
    await portal.form()
    return await _add(portal, "informed-consent", N_("Consent given."), "/portal/consent")


@router.post("/consent/{logical_id}/withdraw")
async def withdraw_consent(portal: Patient, logical_id: str) -> Response:
    return await _deactivate(portal, logical_id, N_("Consent withdrawn."), "/portal/consent")


# -- therapeutic relationships (CO-5..CO-7) ------------------------------------------------------


async def _with_providers(portal: Portal, category: str, template: str) -> Response:
    """A page of the patient's ``category`` records that names the providers in them."""
    records = await _records(portal, category)
    providers = await directory.providers(portal.request)
    return await portal.page(
        template, records=records, providers=providers, names=directory.names(providers)
    )


@router.get("/relationships")
async def relationships(portal: Patient) -> Response:
    return await _with_providers(portal, "therapeutic-relationship", "relationships.html")


@router.post("/relationships/{logical_id}/end")
async def end_relationship(portal: Patient, logical_id: str) -> Response:
    return await _deactivate(
        portal, logical_id, N_("The relationship has ended."), "/portal/relationships"
    )


# -- exclusions (CO-10) --------------------------------------------------------------------------


@router.get("/exclusions")
async def exclusions(portal: Patient) -> Response:
    return await _with_providers(portal, "exclusion", "exclusions.html")


@router.post("/exclusions")
async def add_exclusion(portal: Patient) -> Response:
    form = await portal.form()
    nihdi = _field(form, "nihdi").replace(" ", "").replace("/", "").replace("-", "")
    nihdi = nihdi or _field(form, "provider")
    if not _NIHDI.match(nihdi):
        portal.flash(N_("Enter an NIHDI number (8 to 11 digits) or choose a provider."), "error")
        return await portal.redirect("/portal/exclusions")
    # A professional's number has 11 digits; a pharmacy's (organisation) fewer (docs/architecture.md 4b).
    system = systems.NIHDI_PROFESSIONAL if len(nihdi) == 11 else systems.NIHDI_ORGANIZATION
    provision = {
        "type": "deny",
        "actor": [{"reference": {"identifier": {"system": system, "value": nihdi}}}],
    }
    return await _add(portal, "exclusion", N_("Exclusion added."), "/portal/exclusions", provision)


@router.post("/exclusions/{logical_id}/remove")
async def remove_exclusion(portal: Patient, logical_id: str) -> Response:
    return await _deactivate(portal, logical_id, N_("Exclusion removed."), "/portal/exclusions")


# -- who accessed my data (SEC-5, SEC-6, PO-2) ---------------------------------------------------


def _date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise PortalRefusal(400, N_("Enter dates as YYYY-MM-DD.")) from None


@router.get("/access-log")
async def access_log(
    portal: Patient,
    start: str | None = None,
    end: str | None = None,
    mine: str | None = None,
    cursor: str | None = None,
) -> Response:
    first, last = _date(start), _date(end)
    dates = []
    if first is not None:
        dates.append(f"ge{first.isoformat()}")
    if last is not None:
        dates.append(f"le{last.isoformat()}")
    params: list[tuple[str, str | int]] = [("date", d) for d in dates]
    params += [("_count", 200), *_cursor(cursor).items()]
    bundle = await portal.fhir.get("AuditEvent", params)
    events = [views.access(e) for e in api.entries(bundle)]
    if mine != "1":
        # The portal's own calls are audited too; by default show what others did.
        events = [e for e in events if not e.who_is_patient]
    providers = await directory.providers(portal.request)
    return await portal.page(
        "access_log.html",
        events=events,
        start=first.isoformat() if first else "",
        end=last.isoformat() if last else "",
        mine=mine == "1",
        next_cursor=api.next_cursor(bundle),
        names=directory.names(providers),
    )


@router.get("/{rest:path}", include_in_schema=False)
async def not_found(rest: str) -> Response:
    raise PortalRefusal(404, N_("This page does not exist."))
