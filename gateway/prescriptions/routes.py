"""HTTP routes for MedicationRequest: thin, the rules live in ``service``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response

from gateway.auth.identity import Principal
from gateway.db import DbSession
from gateway.errors import NotFound
from gateway.fhir import bundles
from gateway.fhir.negotiation import FhirBody, OperationBody, expect_resource_type
from gateway.fhir.responses import bundle_response, resource_response
from gateway.prescriptions.auth import (
    PrescriptionCreate,
    PrescriptionExecutorStep,
    PrescriptionRead,
    PrescriptionRelease,
    PrescriptionReserve,
    PrescriptionSearch,
    PrescriptionUpdate,
)
from gateway.prescriptions.lifecycle import Event as Step
from gateway.prescriptions.service import RESOURCE, PrescriptionService
from gateway.storage.guard import RequestInfo, request_info
from gateway.storage.store import ResourceStore

router = APIRouter(prefix=f"/{RESOURCE}")


async def get_service(
    request: Request, session: DbSession, info: Annotated[RequestInfo, Depends(request_info)]
) -> PrescriptionService:
    # async: a plain def dependency would run in the thread pool, a needless hop per request
    store = ResourceStore(session, request.app.state.keyring)
    return PrescriptionService(store, request.app.state.settings, info)


Service = Annotated[PrescriptionService, Depends(get_service)]


@router.post("")
async def create(
    request: Request,
    caller: PrescriptionCreate,  # authenticate before reading the body
    body: FhirBody,
    service: Service,
    if_none_exist: Annotated[str | None, Header()] = None,
) -> Response:
    expect_resource_type(body, RESOURCE)
    result = await service.create(body, caller, if_none_exist=if_none_exist)
    return resource_response(
        request, result.stored, status=201 if result.created else 200, location=True
    )


@router.get("")
async def search(request: Request, caller: PrescriptionSearch, service: Service) -> Response:
    page = await service.search(request.query_params, caller)
    return bundle_response(bundles.searchset(request, RESOURCE, page))


@router.get("/{logical_id}")
async def read(
    request: Request, logical_id: str, caller: PrescriptionRead, service: Service
) -> Response:
    return resource_response(request, await service.read(logical_id, caller))


@router.get("/{logical_id}/_history")
async def history(
    request: Request, logical_id: str, caller: PrescriptionRead, service: Service
) -> Response:
    return bundle_response(bundles.history(request, await service.history(logical_id, caller)))


@router.get("/{logical_id}/_history/{version_id}")
async def vread(
    request: Request, logical_id: str, version_id: str, caller: PrescriptionRead, service: Service
) -> Response:
    if not version_id.isdigit():
        raise NotFound(f"{RESOURCE}/{logical_id}/_history/{version_id[:20]} is not known")
    return resource_response(request, await service.vread(logical_id, int(version_id), caller))


@router.post("/{logical_id}/$set-visibility")
async def set_visibility(
    request: Request,
    logical_id: str,
    caller: PrescriptionUpdate,  # authenticate before reading the body
    body: FhirBody,
    service: Service,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    """DESIGN.md 4c: who sees the prescription in searches by patient (RX-13, RX-14)."""
    stored = await service.set_visibility(logical_id, body, caller, if_match=if_match)
    return resource_response(request, stored)


# -- the lifecycle (RX-7, RX-15; DESIGN.md 4, 6): each a step of gateway.prescriptions.lifecycle --

IfMatch = Annotated[str | None, Header()]


async def _step(
    request: Request,
    service: PrescriptionService,
    logical_id: str,
    step: Step,
    body: dict[str, Any],
    caller: Principal,
    if_match: str | None,
) -> Response:
    stored = await service.change_state(logical_id, step, body, caller, if_match=if_match)
    return resource_response(request, stored)


@router.post("/{logical_id}/$revoke")
async def revoke(
    request: Request,
    logical_id: str,
    caller: PrescriptionUpdate,
    body: OperationBody,
    service: Service,
    if_match: IfMatch = None,
) -> Response:
    """DESIGN.md 4: the author withdraws an open prescription, with a ``reason`` (RX-7)."""
    return await _step(request, service, logical_id, Step.REVOKE, body, caller, if_match)


@router.post("/{logical_id}/$take-in-process")
async def take_in_process(
    request: Request,
    logical_id: str,
    caller: PrescriptionExecutorStep,
    body: OperationBody,
    service: Service,
    if_match: IfMatch = None,
) -> Response:
    """RX-7 putRidsInProcess: other pharmacies cannot deliver it until it is released."""
    return await _step(request, service, logical_id, Step.TAKE_IN_PROCESS, body, caller, if_match)


@router.post("/{logical_id}/$release")
async def release(
    request: Request,
    logical_id: str,
    caller: PrescriptionRelease,
    body: OperationBody,
    service: Service,
    if_match: IfMatch = None,
) -> Response:
    """RX-7: back to open, by the pharmacy holding it or the patient (a reservation, RX-15)."""
    return await _step(request, service, logical_id, Step.RELEASE, body, caller, if_match)


@router.post("/{logical_id}/$reserve")
async def reserve(
    request: Request,
    logical_id: str,
    caller: PrescriptionReserve,
    body: OperationBody,
    service: Service,
    if_match: IfMatch = None,
) -> Response:
    """RX-15: the patient reserves it at one pharmacy (``pharmacy``: organisation NIHDI)."""
    return await _step(request, service, logical_id, Step.RESERVE, body, caller, if_match)


@router.post("/{logical_id}/$archive")
async def archive(
    request: Request,
    logical_id: str,
    caller: PrescriptionExecutorStep,
    body: OperationBody,
    service: Service,
    if_match: IfMatch = None,
) -> Response:
    """RX-7 markAsArchived: the delivering pharmacy's housekeeping; no undo afterwards."""
    return await _step(request, service, logical_id, Step.ARCHIVE, body, caller, if_match)
