"""Who may call the MedicationRequest routes: scope and role per interaction (SMART v2 scopes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from gateway.auth.identity import Principal
from gateway.auth.scopes import require_scopes

PrescriptionCreate = Annotated[
    Principal, Depends(require_scopes("system/MedicationRequest.c", roles={"prescriber"}))
]
PrescriptionRead = Annotated[Principal, Depends(require_scopes("system/MedicationRequest.r"))]
PrescriptionSearch = Annotated[Principal, Depends(require_scopes("system/MedicationRequest.s"))]
# $set-visibility: the patient, or the author at the patient's request (RX-13, RX-14); the
# decision (consent.decide) settles which of them it is.
PrescriptionUpdate = Annotated[Principal, Depends(require_scopes("system/MedicationRequest.u"))]
