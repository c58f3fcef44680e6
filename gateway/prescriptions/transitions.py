"""Applying a lifecycle step to a stored prescription: check, then write the new version.

``lifecycle`` says whether the state allows the step; this module turns its answer into a new
version of the MedicationRequest (FHIR status, the lifecycle extension, the status reason) and the
search columns that make the state searchable, written with compare-and-set on the version read
(docs/architecture.md 6: transitions are atomic across instances). Both refusals are 409s audited as
denials: ``state-conflict`` (RX-7 forbids it) and ``concurrent-change`` (another request changed
the prescription between our read and our write: of two racing dispenses, the loser).

A patient's reservation (RX-15) is marked in the search column ``actor_nihdi`` (the pharmacy
reserved at, indexed; on a prescription nothing else uses it) for as long as it lasts, so that
the pharmacy lists its reservations (``MedicationRequest?reserved-at=``); every other step clears
it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, Final

from consent import PrescriptionState
from gateway.access.guard import Event, Guard
from gateway.access.service import Target, target_of
from gateway.errors import PreconditionFailed
from gateway.prescriptions import describe, lifecycle
from gateway.prescriptions.searching import RESOURCE
from gateway.storage.store import ResourceStore, StoredVersion

# The reason a patient's deletion gives (RX-7 "verwijderen"): a code of the gateway's own, as the
# Belgian BeMedicationPrescriptionStatusReason (``describe.STATUS_REASON_SYSTEM``, code ``expired``)
# has none for it and its binding to statusReason is extensible (FHIR R4 terminologies.html#extensible).
STATUS_REASON_SYSTEM: Final = "urn:ehealth-gateway:prescription-status-reason"
DELETED_BY_PATIENT: Final[dict[str, Any]] = {
    "coding": [
        {
            "system": STATUS_REASON_SYSTEM,
            "code": "deleted-by-patient",
            "display": "Deleted by the patient",
        }
    ],
    "text": "the patient deleted this prescription",
}

STATE_CONFLICT: Final = "state-conflict"
CONCURRENT_CHANGE: Final = "concurrent-change"

# RX-6: the FHIR status each stored state is reported with (expiry is computed, never stored).
_STATUS: Final[dict[PrescriptionState, str]] = {
    PrescriptionState.OPEN: "active",
    PrescriptionState.IN_PROCESS: "active",
    PrescriptionState.DELIVERED: "completed",
    PrescriptionState.ARCHIVED: "completed",
    PrescriptionState.REVOKED: "cancelled",
}


def state_of(current: Target) -> PrescriptionState:
    assert current.described.state is not None  # describe.resource_of always sets it
    return current.described.state


def current(stored: StoredVersion, now: datetime) -> Target:
    """``stored`` (a prescription's current version, however it was found) at ``now``."""
    return target_of(stored, lambda s, resource, ssin: describe.resource_of(s, resource, ssin, now))


async def load(store: ResourceStore, logical_id: str, now: datetime) -> Target:
    return current(await store.read(RESOURCE, logical_id), now)


def reserved(current: Target) -> bool:
    """Whether the pharmacy holding it holds a patient's reservation (RX-15): the lifecycle
    extension says so (``describe.lifecycle_extension``)."""
    for extension in current.resource.get("extension") or ():
        if isinstance(extension, dict) and extension.get("url") == describe.LIFECYCLE_URL:
            return any(
                isinstance(part, dict)
                and part.get("url") == "reservation"
                and part.get("valueBoolean") is True
                for part in extension.get("extension") or ()
            )
    return False


def check(
    guard: Guard, current: Target, step: lifecycle.Step, *, by: str | None, audit: Event
) -> lifecycle.StepResult:
    """The state after ``step``, or a 409 (audited) naming why RX-7 forbids it."""
    try:
        return lifecycle.transition(
            state_of(current),
            step,
            holder=current.stored.columns.holder_nihdi,
            by=by,
            reserved=reserved(current),
        )
    except lifecycle.TransitionRefused as refused:
        guard.refuse_change(STATE_CONFLICT, audit, refused.message)


async def write(
    guard: Guard,
    current: Target,
    outcome: lifecycle.StepResult,
    *,
    audit: Event,
    expected_version: int | None = None,
    status_reason: dict[str, Any] | None = None,
    reservation: bool = False,
) -> StoredVersion:
    """The new version in state ``outcome``. ``expected_version`` comes from ``If-Match`` (a
    stale one is 412); without it the version read is expected, and losing to a concurrent
    change is a 409."""
    stored = current.stored
    body = describe.with_extension(
        {k: v for k, v in current.resource.items() if k not in ("statusReason", "meta")},
        describe.lifecycle_extension(
            outcome.state, pharmacy=outcome.holder, reservation=reservation
        ),
    )
    body["status"] = _STATUS[outcome.state]
    if status_reason is not None:
        body["statusReason"] = status_reason
    columns = replace(
        stored.columns,
        patient_ssin=current.ssin,
        status=body["status"],
        lifecycle=outcome.state.value,
        holder_nihdi=outcome.holder,
        actor_nihdi=outcome.holder if reservation else None,  # RX-15: the reservation's pharmacy
    )
    try:
        return await guard.store.update(
            RESOURCE,
            stored.logical_id,
            body,
            columns,
            expected_version=stored.version_id if expected_version is None else expected_version,
            same_identifiers=True,  # RX-7: a step changes the state, never the identifiers
        )
    except PreconditionFailed:
        if expected_version is not None:
            raise  # If-Match named a version that is no longer current: 412
        guard.refuse_change(
            CONCURRENT_CHANGE,
            audit,
            "the prescription was changed by another request at the same time; read it again",
        )
