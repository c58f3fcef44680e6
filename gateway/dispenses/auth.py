"""Who may call the MedicationDispense routes: scope and role per interaction (SMART v2 scopes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from gateway.auth.identity import Principal
from gateway.auth.scopes import require_scopes

# RX-25: a dispense is the pharmacy's record; others read it under the access rules.
CAN_DISPENSE = require_scopes("system/MedicationDispense.c", roles={"pharmacist"})
DispenseCreate = Annotated[Principal, Depends(CAN_DISPENSE)]  # also $validate's
DispenseUndo = Annotated[
    Principal, Depends(require_scopes("system/MedicationDispense.u", roles={"pharmacist"}))
]
DispenseSearch = Annotated[Principal, Depends(require_scopes("system/MedicationDispense.s"))]
