"""HTTP routes for Consent (docs/architecture.md 4, 4c): thin, the rules live in ``service``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response

from gateway.access.facts import RESOURCE
from gateway.access.guard import service_dependency
from gateway.consents.auth import ConsentCreate, ConsentRead, ConsentSearch, ConsentUpdate
from gateway.consents.service import ConsentService
from gateway.errors import NotFound
from gateway.fhir import bundles
from gateway.fhir.negotiation import FhirBody, expect_resource_type
from gateway.fhir.preconditions import version_number
from gateway.fhir.responses import bundle_response, resource_response

router = APIRouter(prefix=f"/{RESOURCE}")


Service = Annotated[ConsentService, Depends(service_dependency(ConsentService))]


@router.post("")
async def create(
    request: Request, caller: ConsentCreate, body: FhirBody, service: Service
) -> Response:
    expect_resource_type(body, RESOURCE)
    stored = await service.create(body, caller)
    return resource_response(request, stored, status=201, location=True)


@router.get("")
async def search(request: Request, caller: ConsentSearch, service: Service) -> Response:
    page = await service.search(request.query_params, caller)
    return bundle_response(bundles.searchset(request, RESOURCE, page))


@router.get("/{logical_id}")
async def read(
    request: Request, logical_id: str, caller: ConsentRead, service: Service
) -> Response:
    return resource_response(request, await service.read(logical_id, caller))


@router.put("/{logical_id}")
async def update(
    request: Request,
    logical_id: str,
    caller: ConsentUpdate,
    body: FhirBody,
    service: Service,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    expect_resource_type(body, RESOURCE)
    stored = await service.update(logical_id, body, caller, if_match=if_match)
    return resource_response(request, stored)


@router.get("/{logical_id}/_history")
async def history(
    request: Request, logical_id: str, caller: ConsentRead, service: Service
) -> Response:
    return bundle_response(bundles.history(request, await service.history(logical_id, caller)))


@router.get("/{logical_id}/_history/{version_id}")
async def vread(
    request: Request, logical_id: str, version_id: str, caller: ConsentRead, service: Service
) -> Response:
    version = version_number(version_id)
    if version is None:
        raise NotFound(f"{RESOURCE}/{logical_id}/_history/{version_id[:20]} is not known")
    return resource_response(request, await service.vread(logical_id, version, caller))
