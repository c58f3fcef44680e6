"""Who may call the MedicationRequest routes: scope and role per interaction (SMART v2 scopes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from gateway.auth import scopes
from gateway.auth.errors import InsufficientScope
from gateway.auth.identity import Principal
from gateway.auth.scopes import require_scopes
from gateway.errors import Forbidden, NotFound
from gateway.prescriptions.lifecycle import Step
from gateway.prescriptions.operations import OPERATION_NAMES

PrescriptionCreate = Annotated[
    Principal, Depends(require_scopes("system/MedicationRequest.c", roles={"prescriber"}))
]
PrescriptionRead = Annotated[Principal, Depends(require_scopes("system/MedicationRequest.r"))]
PrescriptionSearch = Annotated[Principal, Depends(require_scopes("system/MedicationRequest.s"))]
# $set-visibility: the patient, or the author at the patient's request (RX-13, RX-14); the
# decision (consent.decide) settles which of them it is.
PrescriptionUpdate = Annotated[Principal, Depends(require_scopes("system/MedicationRequest.u"))]


def step_of(operation: str, caller: Principal) -> Step:
    """The lifecycle step an operation name asks for, if ``caller`` may ask for it: its role is
    one the operation serves, and it holds the scope: a pharmacy's steps (take in process,
    release, archive) are part of dispensing (``system/MedicationDispense.u``); the author's
    ``$revoke`` and the patient's ``$reserve`` / ``$release`` update the prescription
    (``system/`` or ``patient/MedicationRequest.u``)."""
    op = OPERATION_NAMES.get(operation)
    if op is None:
        raise NotFound(f"MedicationRequest has no operation {operation[:40]!r}")
    if caller.role not in dict(op.actions):
        raise Forbidden(f"wrong-role: {op.name} is not open to the caller's role")
    needed = scopes.parse(
        "system/MedicationDispense.u"
        if caller.role == "pharmacist"
        else "system/MedicationRequest.u"
    )
    if not scopes.covers(caller.scopes, needed):
        raise InsufficientScope(str(needed))
    return op.step
