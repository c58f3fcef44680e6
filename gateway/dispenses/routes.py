"""HTTP routes for MedicationDispense: thin, the rules live in ``service``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response

from gateway.access.routes import add_instance_reads
from gateway.access.service import service_dependency
from gateway.dispenses.auth import DispenseCreate, DispenseSearch, DispenseUndo
from gateway.dispenses.service import RESOURCE, DispenseService
from gateway.fhir import bundles
from gateway.fhir.negotiation import FhirBody, OperationBody, expect_resource_type
from gateway.fhir.responses import bundle_response, resource_response

router = APIRouter(prefix=f"/{RESOURCE}")


build_service = service_dependency(DispenseService)
Service = Annotated[DispenseService, Depends(build_service)]


@router.post("")
async def create(
    request: Request, caller: DispenseCreate, body: FhirBody, service: Service
) -> Response:
    """docs/architecture.md 4: dispense against a prescription; of two racing dispenses one wins (409)."""
    expect_resource_type(body, RESOURCE)
    stored = await service.create(body, caller)
    return resource_response(request, stored, status=201, location=True)


@router.get("")
async def search(request: Request, caller: DispenseSearch, service: Service) -> Response:
    page = await service.search(request.query_params, caller)
    return bundle_response(bundles.searchset(request, RESOURCE, page))


@router.post("/{logical_id}/$undo")
async def undo(
    request: Request,
    logical_id: str,
    caller: DispenseUndo,
    body: OperationBody,
    service: Service,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    """RX-7 markAsUnDelivered: the same pharmacy, within the window; the prescription reopens."""
    stored = await service.undo(logical_id, body, caller, if_match=if_match)
    return resource_response(request, stored)


add_instance_reads(router, RESOURCE, build_service)
