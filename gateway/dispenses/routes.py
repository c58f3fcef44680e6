"""HTTP routes for MedicationDispense: thin, the rules live in ``service``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response

from gateway.access.routes import add_instance_reads, caller_and_body
from gateway.access.service import family_service, service_dependency
from gateway.dispenses.auth import CAN_DISPENSE, DispenseSearch, DispenseUndo
from gateway.dispenses.service import RESOURCE, DispenseService
from gateway.fhir import bundles
from gateway.fhir.negotiation import OperationBody
from gateway.fhir.responses import bundle_response, resource_response

router = APIRouter(prefix=f"/{RESOURCE}")


build_service = service_dependency(DispenseService)
Service = Annotated[DispenseService, Depends(build_service)]


@router.post("")
async def create(request: Request) -> Response:
    """docs/architecture.md 4: dispense against a prescription; of two racing dispenses one wins
    (409). A hot path: no FastAPI dependencies, the same checks in the same order
    (``gateway.access.service.family_service``)."""
    caller, body = await caller_and_body(request, CAN_DISPENSE, RESOURCE)
    async with family_service(request, DispenseService) as service:
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


add_instance_reads(router, RESOURCE, DispenseService)
