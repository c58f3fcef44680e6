"""The only place where errors become FHIR ``OperationOutcome`` answers.

Every error a client can cause gets a 4xx with the element's path in ``expression``; anything else
is a bland 500 whose details go to the log under the request id, never to the client. The
exception handlers here, the audited refusals (``gateway.audit.refusals``), the size and time
limits (``gateway.limits``) and the last-resort 500 (``gateway.logging``) all build their body with
``operation_outcome``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from fhir_profiles.issues import Issue
from gateway.errors import GatewayError
from gateway.fhir.media import FHIR_JSON_UTF8

log = structlog.get_logger("gateway.errors")

# ``details.coding`` of an issue: the domain rule it breaks (docs/domain.md). An access refusal
# names its decision's reason code in its own system instead (``gateway.audit.refusals``).
RULE_SYSTEM: Final = "urn:ehealth-gateway:rule"

_HTTP_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    412: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
    429: "throttled",
}


def operation_outcome(issues: list[Issue], *, details_system: str = RULE_SYSTEM) -> dict[str, Any]:
    """The OperationOutcome of ``issues``; ``issue.rule`` is coded in ``details_system``."""
    rendered = []
    for issue in issues:
        entry: dict[str, Any] = {
            "severity": issue.severity,
            "code": issue.code,
            "diagnostics": issue.diagnostics,
        }
        if issue.expression:
            entry["expression"] = [issue.expression]
        if issue.rule:
            entry["details"] = {
                "coding": [{"system": details_system, "code": issue.rule}],
                "text": issue.rule,
            }
        rendered.append(entry)
    return {"resourceType": "OperationOutcome", "issue": rendered}


def outcome_body(issues: list[Issue], *, details_system: str = RULE_SYSTEM) -> bytes:
    return orjson.dumps(operation_outcome(issues, details_system=details_system))


def outcome_response(
    status: int,
    issues: list[Issue],
    headers: Mapping[str, str] | None = None,
    *,
    details_system: str = RULE_SYSTEM,
) -> Response:
    return Response(
        outcome_body(issues, details_system=details_system),
        status_code=status,
        media_type=FHIR_JSON_UTF8,
        headers=headers,
    )


async def _gateway_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return outcome_response(exc.status, exc.issues(), exc.headers)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "exception")
    message = exc.detail if isinstance(exc.detail, str) else "request refused"
    if exc.status_code == 404:
        message = "no such endpoint"
    return outcome_response(
        exc.status_code, [Issue(code=code, expression="", diagnostics=message)], exc.headers
    )


async def _request_validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    issues = [
        Issue(
            code="invalid",
            expression=".".join(str(part) for part in error.get("loc", ())),
            diagnostics=str(error.get("msg", "invalid request")),
        )
        for error in exc.errors()
    ]
    return outcome_response(400, issues)


def internal_error_body(request_id: str) -> bytes:
    """A 500 that says nothing about internals; the operator finds the details by request id."""
    issue = Issue(
        code="exception",
        expression="",
        diagnostics=f"internal error; quote request id {request_id} to the operator",
    )
    return outcome_body([issue])


def install(app: FastAPI) -> None:
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
