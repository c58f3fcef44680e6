"""Who may call the MedicationRequest routes: scope and role per interaction (SMART v2 scopes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from consent import Action
from gateway.auth import scopes
from gateway.auth.errors import InsufficientScope
from gateway.auth.identity import Principal
from gateway.auth.scopes import require_scopes
from gateway.errors import Forbidden, NotFound
from gateway.prescriptions.lifecycle import Step
from gateway.prescriptions.operations import OPERATION_NAMES, action_for

CAN_CREATE = require_scopes("system/MedicationRequest.c", roles={"prescriber"})
CAN_SEARCH = require_scopes("system/MedicationRequest.s")
PrescriptionCreate = Annotated[Principal, Depends(CAN_CREATE)]  # also $validate's
# $set-visibility: the patient, or the author at the patient's request (RX-13, RX-14); the
# decision (consent.decide) settles which of them it is.
PrescriptionUpdate = Annotated[Principal, Depends(require_scopes("system/MedicationRequest.u"))]


def step_of(operation: str, caller: Principal) -> Step:
    """The lifecycle step an operation name asks for, if ``caller`` may ask for it: the access
    matrix lets its role take one of the operation's actions (``operations.action_for``), and it
    holds the scope of that action: dispensing steps (a pharmacy's take in process, release,
    archive) need ``system/MedicationDispense.u``; the author's ``$revoke`` and the patient's
    ``$reserve`` / ``$release`` update the prescription (``system/`` or ``patient/MedicationRequest.u``)."""
    op = OPERATION_NAMES.get(operation)
    if op is None:
        raise NotFound(f"MedicationRequest has no operation {operation[:40]!r}")
    action = action_for(op, caller.role)
    if action is None:
        raise Forbidden(f"wrong-role: {op.name} is not open to the caller's role")
    needed = scopes.parse(
        "system/MedicationDispense.u" if action is Action.DISPENSE else "system/MedicationRequest.u"
    )
    if not scopes.covers(caller.scopes, needed):
        raise InsufficientScope(str(needed))
    return op.step
