"""Refusals on ``/fhir`` are audited here, and only here (docs/architecture.md 5, 8; domain CO-12.6, SEC-5).

Every ``Forbidden`` reaches this handler after the request's transaction has rolled back (the
session dependency closes before exception handlers run), so the denial is written in a short
transaction of its own (``writer.record_denied``):

- ``AccessDenied`` carries the full record made where the decision was taken (``Guard``): the
  patient, the resource, the reason code. The answer is a 403 OperationOutcome whose issue
  ``details`` code is that reason (system ``urn:ehealth-gateway:access-reason``); nothing else.
- any other ``Forbidden`` was raised before a service ran (a missing scope, a role the route does
  not serve): its record names the caller, the interaction and the reason code at the head of the
  message (``insufficient-scope``, ``wrong-role``); unless the code that raised it already wrote
  the refusal with ``writer.record_denied`` (``writer.denial_recorded``).

``RefusedChange`` (409: the state forbids the change, RX-7) is written the same way, with its
own record, and answered with its message.

If the audit write itself fails the refusal still stands (403) and the failure is logged.
"""

from __future__ import annotations

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import Response

from fhir_profiles.issues import Issue
from gateway.audit.writer import (
    REASON_SYSTEM,
    AccessDenied,
    AuditRecord,
    RefusedChange,
    denial_recorded,
    record_denied,
)
from gateway.auth.identity import Principal
from gateway.errors import Forbidden
from gateway.fhir.outcomes import outcome_response

log = structlog.get_logger("gateway.audit")


def _interaction(request: Request) -> tuple[str, str, str | None]:
    """(action, resource type, id) of a ``/fhir/<Type>[/<id>[/...]]`` request."""
    parts = [p for p in request.url.path.split("/") if p]
    if parts and parts[0] == "fhir":
        parts = parts[1:]
    resource_type = parts[0][:64] if parts else "unknown"
    logical_id = parts[1][:64] if len(parts) > 1 and not parts[1].startswith("$") else None
    operation = any(p.startswith("$") for p in parts)
    if operation:
        action = "operation"
    elif request.method == "POST":
        action = "create"
    elif request.method in ("PUT", "PATCH"):
        action = "update"
    elif request.method == "DELETE":
        action = "delete"
    else:
        action = "read" if logical_id else "search"
    return action, resource_type, logical_id


def _record_for(request: Request, exc: Forbidden) -> AuditRecord | None:
    if isinstance(exc, AccessDenied):
        return exc.record
    if denial_recorded():
        return None  # the code that refused wrote its own record (writer.record_denied)
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):
        return None  # not authenticated: a 401 path, never here in practice
    action, resource_type, logical_id = _interaction(request)
    reason = exc.message.split(":", 1)[0].strip()[:64] or "forbidden"
    return AuditRecord(
        action=action,
        outcome="deny",
        reason=reason,
        resource_type=resource_type,
        resource_id=logical_id,
        patient_ssin=None,
        actor=principal,
        request_id=getattr(request.state, "request_id", None),
        software=(request.headers.get("user-agent") or "")[:200] or None,
    )


def refusal_issues(reason: str) -> list[Issue]:
    """The 403 of a decision: the reason code and nothing else (no health data)."""
    return [Issue(code="forbidden", expression="", diagnostics=reason, rule=reason)]


async def _write(request: Request, audit: AuditRecord) -> None:
    try:
        await record_denied(request.app.state.sessions, request.app.state.keyring, audit)
    except Exception as error:
        log.error("audit_write_failed", reason=audit.reason, error_type=type(error).__name__)


async def refused_change(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RefusedChange)
    await _write(request, exc.record)
    return outcome_response(exc.status, exc.issues(), exc.headers)


async def forbidden(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Forbidden)
    audit = _record_for(request, exc)
    if audit is not None:
        await _write(request, audit)
    if isinstance(exc, AccessDenied):
        return outcome_response(
            403, refusal_issues(exc.record.reason), exc.headers, details_system=REASON_SYSTEM
        )
    return outcome_response(exc.status, exc.issues(), exc.headers)


def install(app: FastAPI) -> None:
    """Register after ``gateway.fhir.outcomes.install``: the more specific handler wins."""
    app.add_exception_handler(Forbidden, forbidden)
    app.add_exception_handler(RefusedChange, refused_change)
