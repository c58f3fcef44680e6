"""HTTP routes for MedicationRequest: thin, the rules live in ``service``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response

from gateway.access.routes import add_instance_reads, caller_and_body, created_response
from gateway.access.service import family_service, service_dependency
from gateway.auth.identity import Principal, authenticate
from gateway.fhir import bundles, references
from gateway.fhir.negotiation import FhirBody, OperationBody
from gateway.fhir.responses import bundle_response, resource_response
from gateway.prescriptions.auth import CAN_CREATE, CAN_SEARCH, PrescriptionUpdate, step_of
from gateway.prescriptions.service import RESOURCE, PrescriptionService

router = APIRouter(prefix=f"/{RESOURCE}")


build_service = service_dependency(PrescriptionService)
Service = Annotated[PrescriptionService, Depends(build_service)]


# Create and search are the hot paths (issue 18): they take no FastAPI dependencies but call the
# same checks in the same order (caller, then body), in one transaction (family_service).


@router.post("")
async def create(
    request: Request, if_none_exist: Annotated[str | None, Header()] = None
) -> Response:
    """Create, and conditional create with ``If-None-Exist`` (FHIR R4 http.html#ccreate; the
    header declared here is what the CapabilityStatement reads, gateway.capability.served)."""
    caller, body = await caller_and_body(request, CAN_CREATE, RESOURCE)
    condition = references.create_condition(if_none_exist, request.query_params)
    async with family_service(request, PrescriptionService) as service:
        created = await service.create(body, caller, if_none_exist=condition)
    return created_response(request, created)


@router.get("")
async def search(request: Request) -> Response:
    """By RID (a pharmacist's scan), by patient, by author... (``searching``)."""
    caller = await CAN_SEARCH.caller(request)
    async with family_service(request, PrescriptionService) as service:
        page = await service.search(request.query_params, caller)
    return bundle_response(bundles.searchset(request, RESOURCE, page))


@router.post("/{logical_id}/$set-visibility")
async def set_visibility(
    request: Request,
    logical_id: str,
    caller: PrescriptionUpdate,  # authenticate before reading the body
    body: FhirBody,
    service: Service,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    """docs/architecture.md 4c: who sees the prescription in searches by patient (RX-13, RX-14)."""
    stored = await service.set_visibility(logical_id, body, caller, if_match=if_match)
    return resource_response(request, stored)


@router.post("/{logical_id}/$set-feedback")
async def set_feedback(
    request: Request,
    logical_id: str,
    caller: PrescriptionUpdate,  # authenticate before reading the body
    body: FhirBody,
    service: Service,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    """RX-8: the author accepts or refuses pharmacists' feedback on this prescription."""
    stored = await service.set_feedback(logical_id, body, caller, if_match=if_match)
    return resource_response(request, stored)


add_instance_reads(router, RESOURCE, PrescriptionService)


# -- the lifecycle (RX-7, RX-15; docs/architecture.md 4, 6): $revoke, $take-in-process, $release, $reserve,
# $archive, each a step of gateway.prescriptions.lifecycle (docs/pharmacy.md). Registered after
# $set-visibility, whose own route wins for that name.


@router.post("/{logical_id}/{operation}")
async def lifecycle_step(
    request: Request,
    logical_id: str,
    operation: str,
    caller: Annotated[Principal, Depends(authenticate)],
    body: OperationBody,
    service: Service,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    step = step_of(operation, caller)  # 404 for an unknown operation; scope and role (403)
    stored = await service.change_state(logical_id, step, body, caller, if_match=if_match)
    return resource_response(request, stored)
