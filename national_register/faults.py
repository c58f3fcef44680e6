"""What is register-specific about fault injection (the layer itself is ``mock_services.faults``).

Faults apply to the register's questions (``POST /checks``) and never to ``/admin/...`` or
``/healthz``. A drawn drop reads the question and closes the connection without handling it. The
draws come from one stream, seeded ``"<seed>:register"``.
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Scope

from mock_services.faults import FaultInjection, FaultSettings, FaultState, Unavailable

_UNAVAILABLE = Unavailable(
    "application/json",
    orjson.dumps({"error": "UNAVAILABLE", "detail": "register unavailable (fault injection)"}),
)


def register_faults(settings: FaultSettings, seed: int | None) -> FaultState:
    return FaultState(settings, seed, stream="register")


def fault_layer(app: ASGIApp, state: FaultState) -> FaultInjection:
    """The outermost layer of the register's app."""

    def state_for(scope: Scope) -> FaultState | None:
        return state if scope["path"].startswith("/checks") else None

    return FaultInjection(app, state_for, _UNAVAILABLE)
