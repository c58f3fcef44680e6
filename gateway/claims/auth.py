"""Who may call the Claim and ClaimResponse routes: scope and role per interaction (SMART v2).

Care providers (GP, specialist, dentist, physiotherapist) send attestations with the ``prescriber``
role for now: it is the role of an individual provider with an NIHDI number, and its ceiling holds
``system/Claim.crus`` and ``system/ClaimResponse.rs``. A cancellation is an update with a reason
(``gateway.auth.scopes``: nobody deletes).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from gateway.auth.identity import Principal
from gateway.auth.scopes import require_scopes

CAN_CLAIM = require_scopes("system/Claim.c", roles={"prescriber"})
ClaimCreate = Annotated[Principal, Depends(CAN_CLAIM)]  # also $process-message's and $validate's
ClaimCancel = Annotated[Principal, Depends(require_scopes("system/Claim.u", roles={"prescriber"}))]
ClaimSearch = Annotated[Principal, Depends(require_scopes("system/Claim.s"))]
ClaimResponseSearch = Annotated[Principal, Depends(require_scopes("system/ClaimResponse.s"))]
