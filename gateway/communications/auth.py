"""Who may call the Communication routes: scope and role per interaction (SMART v2 scopes).

Pharmacies send feedback (``system/Communication.c``); pharmacies and prescribers read and search
it (``.rs``) under the access rules. No patient scope covers it (RX-8, ``gateway.auth.scopes``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from gateway.auth.identity import Principal
from gateway.auth.scopes import require_scopes

FeedbackCreate = Annotated[
    Principal, Depends(require_scopes("system/Communication.c", roles={"pharmacist"}))
]
FeedbackSearch = Annotated[Principal, Depends(require_scopes("system/Communication.s"))]
