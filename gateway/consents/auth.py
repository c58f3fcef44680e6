"""Who may call the Consent routes: the SMART scope per interaction. Which role may do what to
which patient's records is ``consent.decide`` (CO-2, CO-10, PO-4), asked by the service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from gateway.auth.identity import Principal
from gateway.auth.scopes import require_scopes

ConsentCreate = Annotated[Principal, Depends(require_scopes("system/Consent.c"))]
ConsentSearch = Annotated[Principal, Depends(require_scopes("system/Consent.s"))]
ConsentUpdate = Annotated[Principal, Depends(require_scopes("system/Consent.u"))]
