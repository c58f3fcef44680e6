"""What is fund-specific about fault injection (the layer itself is ``mock_services.faults``).

Faults apply per fund to its business endpoints (``/funds/{code}/...``) and never to
``/funds/{code}/admin/...``, ``/admin/...`` or ``/healthz``. A drawn drop is the nasty case of
AT-7: a POST is handled and committed, then the connection is closed, so the caller never hears;
other methods are answered normally. Each fund draws from its own stream, seeded ``"<seed>:<code>"``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mock_services.faults import (
    DropNames,
    FaultInjection,
    FaultSettings,
    FaultState,
    FaultUpdate,
    Unavailable,
)
from mutualities.errors import ProtocolError
from mutualities.responses import FHIR_JSON, operation_outcome

DROP = DropNames(rate="drop_after_commit_rate", counter="dropped_after_commit")
_FUND_PATH = re.compile(r"^/funds/([^/]+)(/.*)?$")


class FundFaultUpdate(FaultUpdate):
    """Body of ``POST {fund}/admin/faults`` and ``POST /admin/faults``."""

    drop_rate: float | None = Field(default=None, ge=0.0, le=1.0, alias=DROP.rate)


def fund_faults(code: str, settings: FaultSettings, seed: int | None) -> FaultState:
    return FaultState(settings, seed, stream=code, labels={"fund": code}, names=DROP)


def fault_layer(app: ASGIApp, faults: Mapping[str, FaultState]) -> FaultInjection:
    """The outermost layer of the funds' app: ``faults`` by fund code."""

    def state_for(scope: Scope) -> FaultState | None:
        match = _FUND_PATH.match(scope["path"])
        if match is None or (match.group(2) or "").startswith("/admin"):
            return None
        return faults.get(match.group(1))

    unavailable = Unavailable(
        FHIR_JSON,
        operation_outcome(
            ProtocolError.UNAVAILABLE, "transient", "Fund unavailable (fault injection)"
        ),
    )
    return FaultInjection(app, state_for, unavailable, drop=_drop_after_commit)


async def _drop_after_commit(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> bool:
    """Handle the POST and commit, swallowing the answer; the layer then closes the connection."""

    async def swallow(_message: Message) -> None:
        pass

    if scope["method"] != "POST":
        await app(scope, receive, send)
        return False
    await app(scope, receive, swallow)
    return True
