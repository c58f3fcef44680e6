"""Who may call the MedicationRequest routes: scope and role per interaction (SMART v2 scopes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from gateway.auth.identity import Principal, authenticate
from gateway.auth.scopes import require_scopes

PrescriptionCreate = Annotated[
    Principal, Depends(require_scopes("system/MedicationRequest.c", roles={"prescriber"}))
]
PrescriptionRead = Annotated[Principal, Depends(require_scopes("system/MedicationRequest.r"))]
PrescriptionSearch = Annotated[Principal, Depends(require_scopes("system/MedicationRequest.s"))]
# $set-visibility: the patient, or the author at the patient's request (RX-13, RX-14); the
# decision (consent.decide) settles which of them it is.
PrescriptionUpdate = Annotated[Principal, Depends(require_scopes("system/MedicationRequest.u"))]
# The executor's steps of RX-7 (take in process, release, archive) change the prescription's state
# as part of dispensing: they need the pharmacy's dispense write permission, not a prescription one.
_executor = require_scopes("system/MedicationDispense.u", roles={"pharmacist"})
_patient_update = require_scopes("system/MedicationRequest.u", roles={"patient"})
PrescriptionExecutorStep = Annotated[Principal, Depends(_executor)]
PrescriptionReserve = Annotated[Principal, Depends(_patient_update)]  # RX-15: the patient only


async def _executor_or_patient(caller: Principal = Depends(authenticate)) -> Principal:  # noqa: B008
    """``$release``: the pharmacy holding it, or the patient cancelling a reservation (RX-15)."""
    return await (_patient_update if caller.role == "patient" else _executor)(caller)


PrescriptionRelease = Annotated[Principal, Depends(_executor_or_patient)]
