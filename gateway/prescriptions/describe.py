"""What the access decision needs to know about a stored prescription (``consent.Resource``).

The state is computed (RX-6, RX-7): a stored ``active`` prescription whose validity has ended is
``expired`` without any write (issue 6 owns the rest of the lifecycle). The visibility (RX-13,
RX-14) lives in search columns and is shown on the prescription as the extension
``VISIBILITY_URL`` once the patient has chosen; without it the Recip-e defaults hold (all
pharmacies, open to prescribers).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from consent import (
    PharmacyVisibility,
    PrescriberVisibility,
    PrescriptionState,
    Resource,
    ResourceKind,
    Visibility,
)
from fhir_profiles import is_valid_ssin, normalise_ssin, systems
from gateway.storage.store import StoredVersion

BRUSSELS: Final = ZoneInfo("Europe/Brussels")
VISIBILITY_URL: Final = "urn:ehealth-gateway:extension:visibility"

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


def state(status: str | None, period_end: datetime | None, now: datetime) -> PrescriptionState:
    """RX-6, RX-7: the gateway state at ``now`` (``gateway.storage.filters`` says it in SQL)."""
    if status == "active":
        expired = period_end is not None and now >= period_end
        return PrescriptionState.EXPIRED if expired else PrescriptionState.OPEN
    return _STATES.get(status or "", PrescriptionState.ENTERED_IN_ERROR)


def patient_ssin_of(resource: dict[str, Any]) -> str | None:
    """The SSIN of the prescription's patient; ``None`` when pseudonymised (ID-21)."""
    identifier = (resource.get("subject") or {}).get("identifier") or {}
    value = identifier.get("value")
    if identifier.get("system") != systems.SSIN or not isinstance(value, str):
        return None
    digits = normalise_ssin(value)
    return digits if is_valid_ssin(digits) else None


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
        state=state(stored.status, stored.columns.period_end, now),
        rid=rid_of(resource),
        visibility=visibility_of(stored),
    )


def visibility_extension(visibility: Visibility) -> dict[str, Any]:
    """DESIGN.md 4c: the current choice, shown on the prescription."""
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


def without_visibility(resource: dict[str, Any]) -> dict[str, Any]:
    """``resource`` without a visibility extension: only ``$set-visibility`` sets it."""
    extensions = resource.get("extension")
    if not isinstance(extensions, list):
        return resource
    kept = [e for e in extensions if not (isinstance(e, dict) and e.get("url") == VISIBILITY_URL)]
    if len(kept) == len(extensions):
        return resource
    copy = dict(resource)
    if kept:
        copy["extension"] = kept
    else:
        del copy["extension"]
    return copy
