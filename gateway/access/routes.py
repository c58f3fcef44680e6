"""The instance reads every resource family serves the same way (FHIR R4 http.html#read, #vread,
#history): ``GET [type]/[id]``, ``GET [type]/[id]/_history`` and ``GET [type]/[id]/_history/[vid]``,
each needing the type's read scope (``system/[type].r``, SMART v2) and decided and audited by the
family's service on the current version (``gateway.access.service``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gateway.access.guard import RequestInfo
from gateway.access.service import Created, GuardedService, family_service
from gateway.auth.identity import Principal
from gateway.auth.scopes import ScopeCheck, require_scopes
from gateway.errors import NotFound
from gateway.fhir import bundles
from gateway.fhir.negotiation import expect_resource_type, read_json_body
from gateway.fhir.preconditions import version_number
from gateway.fhir.responses import bundle_response, resource_response
from gateway.settings import Settings
from gateway.storage.store import ResourceStore


async def caller_and_body(
    request: Request, check: ScopeCheck, resource_type: str
) -> tuple[Principal, dict[str, Any]]:
    """A hot create's caller and body, in that order: who calls is settled before the body is read
    (no token is 401, a role that may not create 403, whatever the body), then the body must be a
    ``resource_type``."""
    caller = await check.caller(request)
    body = await read_json_body(request)
    expect_resource_type(body, resource_type)
    return caller, body


def created_response(request: Request, result: Created) -> Response:
    """201 with Location for a new resource; 200 with the one a conditional create found."""
    return resource_response(
        request, result.stored, status=201 if result.created else 200, location=True
    )


def add_instance_reads(
    router: APIRouter,
    resource_type: str,
    service: Callable[[ResourceStore, Settings, RequestInfo], GuardedService],
    *,
    prefix: str = "",
) -> None:
    """Register read, history and vread of ``resource_type`` on ``router`` (whose own prefix,
    if any, plus ``prefix`` is ``/[type]``); ``service`` is the family's service class. A read
    by id is a hot path (a pharmacist's scan): these routes take no FastAPI dependencies
    (``family_service``)."""
    reader = require_scopes(f"system/{resource_type}.r")

    async def read(request: Request, logical_id: str) -> Response:
        caller = await reader.caller(request)
        async with family_service(request, service) as family:
            stored = await family.read(logical_id, caller, resource_type)
        return resource_response(request, stored)

    async def history(request: Request, logical_id: str) -> Response:
        caller = await reader.caller(request)
        async with family_service(request, service) as family:
            versions = await family.history(logical_id, caller, resource_type)
        return bundle_response(bundles.history(request, versions))

    async def vread(request: Request, logical_id: str, version_id: str) -> Response:
        caller = await reader.caller(request)
        version = version_number(version_id)
        if version is None:
            raise NotFound(f"{resource_type}/{logical_id}/_history/{version_id[:20]} is not known")
        async with family_service(request, service) as family:
            stored = await family.vread(logical_id, version, caller, resource_type)
        return resource_response(request, stored)

    name = resource_type.lower()
    router.add_api_route(f"{prefix}/{{logical_id}}", read, methods=["GET"], name=f"{name}-read")
    router.add_api_route(
        f"{prefix}/{{logical_id}}/_history", history, methods=["GET"], name=f"{name}-history"
    )
    router.add_api_route(
        f"{prefix}/{{logical_id}}/_history/{{version_id}}",
        vread,
        methods=["GET"],
        name=f"{name}-vread",
    )
