"""HTTP routes for Consent (docs/architecture.md 4, 4c): thin, the rules live in ``service``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response

from gateway.access.facts import RESOURCE
from gateway.access.routes import add_instance_reads, created_response
from gateway.access.service import service_dependency
from gateway.consents.auth import ConsentCreate, ConsentSearch, ConsentUpdate
from gateway.consents.service import ConsentService
from gateway.errors import MethodNotAllowed
from gateway.fhir import bundles, references
from gateway.fhir.negotiation import FhirBody, expect_resource_type
from gateway.fhir.responses import bundle_response, resource_response

router = APIRouter(prefix=f"/{RESOURCE}")


build_service = service_dependency(ConsentService)
Service = Annotated[ConsentService, Depends(build_service)]


@router.post("")
async def create(
    request: Request,
    caller: ConsentCreate,
    body: FhirBody,
    service: Service,
    if_none_exist: Annotated[str | None, Header()] = None,
) -> Response:
    expect_resource_type(body, RESOURCE)
    condition = references.create_condition(if_none_exist, request.query_params)
    return created_response(request, await service.create(body, caller, if_none_exist=condition))


@router.get("")
async def search(request: Request, caller: ConsentSearch, service: Service) -> Response:
    page = await service.search(request.query_params, caller)
    return bundle_response(bundles.searchset(request, RESOURCE, page))


@router.put("")
async def conditional_update(
    request: Request,
    caller: ConsentUpdate,
    body: FhirBody,
    service: Service,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    """FHIR R4 http.html#cond-update: ``PUT Consent?identifier=...`` updates the one match; with
    none, the body is created as a new Consent; several are 412."""
    expect_resource_type(body, RESOURCE)
    condition = references.condition_in_query(request.query_params)
    if condition is None:
        raise MethodNotAllowed("PUT Consent needs an id in the URL or a search in its query")
    result = await service.conditional_update(condition, body, caller, if_match=if_match)
    return resource_response(
        request, result.stored, status=201 if result.created else 200, location=result.created
    )


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


add_instance_reads(router, RESOURCE, ConsentService)
