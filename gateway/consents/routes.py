"""HTTP routes for Consent (docs/architecture.md 4, 4c): thin, the rules live in ``service``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response

from gateway.access.facts import RESOURCE
from gateway.access.routes import add_instance_reads
from gateway.access.service import service_dependency
from gateway.consents.auth import ConsentCreate, ConsentSearch, ConsentUpdate
from gateway.consents.service import ConsentService
from gateway.fhir import bundles
from gateway.fhir.negotiation import FhirBody, expect_resource_type
from gateway.fhir.responses import bundle_response, resource_response

router = APIRouter(prefix=f"/{RESOURCE}")


build_service = service_dependency(ConsentService)
Service = Annotated[ConsentService, Depends(build_service)]


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


add_instance_reads(router, RESOURCE, build_service)
