"""What the access decision needs to know about a stored prescription (``consent.Resource``).

The state is computed (RX-6, RX-7): the FHIR status, refined by the ``lifecycle`` column (in
process, archived), and a stored open prescription whose validity has ended is ``expired``
without any write: ``as_reported`` shows it as ``stopped`` with the status reason ``expired``
(docs/architecture.md 6). The transitions themselves are ``lifecycle`` and ``transitions``. The visibility (RX-13,
RX-14) lives in search columns and is shown on the prescription as the extension
``VISIBILITY_URL`` once the patient has chosen; without it the Recip-e defaults hold (all
pharmacies, open to prescribers).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import Any, Final

import orjson

from consent import (
    PharmacyVisibility,
    PrescriberVisibility,
    PrescriptionState,
    Resource,
    ResourceKind,
    Visibility,
)
from fhir_profiles import systems
from fhir_profiles.dates import BRUSSELS
from gateway.fhir.subsetting import SUBSETTED
from gateway.storage.store import SearchColumns, StoredVersion

VISIBILITY_URL: Final = "urn:ehealth-gateway:extension:visibility"
# The gateway state of RX-6 on the prescription: ``state`` (valueCode), and while a pharmacy holds
# it (in process, delivered) ``pharmacy`` (its organisation NIHDI) and ``reservation``.
LIFECYCLE_URL: Final = "urn:ehealth-gateway:extension:lifecycle"
# The expiry reason from the Belgian BePrescriptionStatusReason code system (see systems.py).
STATUS_REASON_SYSTEM: Final = systems.PRESCRIPTION_STATUS_REASON

# RX-6: FHIR status -> gateway state. Statuses the gateway never stores map to a state that is
# not open and never visible to executors (fail closed).
_STATES: Final = {
    "completed": PrescriptionState.DELIVERED,
    "cancelled": PrescriptionState.REVOKED,
    "stopped": PrescriptionState.EXPIRED,
    "entered-in-error": PrescriptionState.ENTERED_IN_ERROR,
}


def end_of_day(day: date) -> datetime:
    """The first instant after ``day`` in Brussels (RX-12: validity dates are inclusive)."""
    return datetime.combine(day + timedelta(days=1), time(), BRUSSELS)


def start_of_day(day: date) -> datetime:
    return datetime.combine(day, time(), BRUSSELS)


def state(columns: SearchColumns, now: datetime) -> PrescriptionState:
    """RX-6, RX-7: the gateway state at ``now`` (``gateway.storage.filters`` says it in SQL)."""
    if columns.status == "active":
        if columns.period_end is not None and now >= columns.period_end:
            return PrescriptionState.EXPIRED
        if columns.lifecycle == PrescriptionState.IN_PROCESS:
            return PrescriptionState.IN_PROCESS
        return PrescriptionState.OPEN
    if columns.status == "completed" and columns.lifecycle == PrescriptionState.ARCHIVED:
        return PrescriptionState.ARCHIVED
    return _STATES.get(columns.status or "", PrescriptionState.ENTERED_IN_ERROR)


def _expired_view(resource: dict[str, Any]) -> dict[str, Any]:
    """RX-7 / docs/architecture.md 6: an open prescription past its validity is reported ``stopped`` with the
    status reason ``expired``; nothing was written, the stored version stays ``active``."""
    view = with_extension(resource, lifecycle_extension(PrescriptionState.EXPIRED))
    view["status"] = "stopped"
    view["statusReason"] = {
        "coding": [{"system": STATUS_REASON_SYSTEM, "code": "expired", "display": "Expired"}],
        "text": "the validity period has ended",
    }
    return view


def _reads_expired(stored: StoredVersion, now: datetime) -> bool:
    return stored.status == "active" and state(stored.columns, now) is PrescriptionState.EXPIRED


def as_reported(
    stored: StoredVersion, now: datetime, resource: dict[str, Any] | None = None
) -> StoredVersion:
    """The current version as clients see it at ``now``: re-serialised only when expired.
    ``resource``: its body, when the caller has parsed it already (parsed once per read)."""
    if not _reads_expired(stored, now):
        return stored
    view = _expired_view(resource if resource is not None else stored.json())
    return replace(stored, body=orjson.dumps(view), computed=True)


def status_only(
    stored: StoredVersion, now: datetime, resource: dict[str, Any] | None = None
) -> StoredVersion:
    """RX-6 getPrescriptionStatus, docs/architecture.md 5: a pharmacy holding the RID of a prescription that
    is no longer open learns its state (revoked, delivered, expired), not its content."""
    full = resource if resource is not None else stored.json()
    if _reads_expired(stored, now):
        full = _expired_view(full)
    view: dict[str, Any] = {
        "resourceType": full["resourceType"],
        "id": full["id"],
        "meta": {**full.get("meta", {}), "tag": [SUBSETTED]},
        "identifier": [i for i in full.get("identifier", []) if i.get("system") == systems.RID],
        "status": full["status"],
        "intent": full.get("intent", "order"),
        "subject": {"display": "not shown: the prescription is no longer open"},
        "extension": [e for e in full.get("extension", []) if e.get("url") == LIFECYCLE_URL],
    }
    if "statusReason" in full:
        view["statusReason"] = full["statusReason"]
    if not view["extension"]:
        del view["extension"]
    return replace(stored, body=orjson.dumps(view), computed=True)


def lifecycle_extension(
    current: PrescriptionState, *, pharmacy: str | None = None, reservation: bool = False
) -> dict[str, Any]:
    """The gateway state on the prescription (RX-6), with the pharmacy holding it, if any."""
    parts: list[dict[str, Any]] = [{"url": "state", "valueCode": current.value}]
    if pharmacy:
        parts.append(
            {
                "url": "pharmacy",
                "valueIdentifier": {"system": systems.NIHDI_ORGANIZATION, "value": pharmacy},
            }
        )
    if reservation:
        parts.append({"url": "reservation", "valueBoolean": True})
    return {"url": LIFECYCLE_URL, "extension": parts}


def rid_of(resource: dict[str, Any]) -> str | None:
    for identifier in resource.get("identifier") or ():
        if isinstance(identifier, dict) and identifier.get("system") == systems.RID:
            value = identifier.get("value")
            return value if isinstance(value, str) else None
    return None


def visibility_of(stored: StoredVersion) -> Visibility:
    columns = stored.columns
    return Visibility(
        pharmacies=PharmacyVisibility(columns.pharmacy_visibility or PharmacyVisibility.ALL),
        pharmacy=columns.visible_pharmacy,
        prescribers=PrescriberVisibility(
            columns.prescriber_visibility or PrescriberVisibility.OPEN
        ),
    )


def resource_of(
    stored: StoredVersion, resource: dict[str, Any], ssin: str | None, now: datetime
) -> Resource:
    """The decision's view of ``stored`` (whose parsed body is ``resource``) at ``now``."""
    return Resource(
        kind=ResourceKind.PRESCRIPTION,
        id=stored.logical_id,
        patient_ssin=ssin,
        author_nihdi=stored.author_nihdi,
        state=state(stored.columns, now),
        rid=rid_of(resource),
        dispensed_by=_dispensed_by(stored),
        visibility=visibility_of(stored),
    )


def _dispensed_by(stored: StoredVersion) -> str | None:
    delivered = stored.status == "completed"
    return stored.columns.holder_nihdi if delivered else None


def visibility_extension(visibility: Visibility) -> dict[str, Any]:
    """docs/architecture.md 4c: the current choice, shown on the prescription."""
    parts: list[dict[str, Any]] = [{"url": "pharmacies", "valueCode": visibility.pharmacies.value}]
    if visibility.pharmacies is PharmacyVisibility.ONE and visibility.pharmacy:
        parts.append(
            {
                "url": "pharmacy",
                "valueIdentifier": {
                    "system": systems.NIHDI_ORGANIZATION,
                    "value": visibility.pharmacy,
                },
            }
        )
    parts.append({"url": "prescribers", "valueCode": visibility.prescribers.value})
    return {"url": VISIBILITY_URL, "extension": parts}


def with_extension(resource: dict[str, Any], extension: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``resource`` whose extension with ``extension``'s url is ``extension`` (the
    gateway's own extensions appear once: the visibility, the lifecycle)."""
    url = extension["url"]
    kept = [
        e
        for e in resource.get("extension") or ()
        if not (isinstance(e, dict) and e.get("url") == url)
    ]
    return {**resource, "extension": [*kept, extension]}
