"""HTTP routes for Claim and ClaimResponse: thin, the rules live in ``service``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response
from starlette.background import BackgroundTask

from gateway.access.guard import service_dependency
from gateway.claims.auth import (
    ClaimCancel,
    ClaimCreate,
    ClaimRead,
    ClaimResponseRead,
    ClaimResponseSearch,
    ClaimSearch,
)
from gateway.claims.model import CLAIM, CLAIM_RESPONSE
from gateway.claims.service import ClaimService, WriteResult
from gateway.errors import NotFound
from gateway.fhir import bundles
from gateway.fhir.negotiation import FhirBody, expect_resource_type
from gateway.fhir.preconditions import version_number
from gateway.fhir.responses import bundle_response, resource_response

router = APIRouter()
REPLAYED_HEADER = "Idempotent-Replayed"


# An async dependency (no thread-pool hop) with the request's Guard facts: clock, request id,
# client software (gateway.access.guard.request_info).
Service = Annotated[ClaimService, Depends(service_dependency(ClaimService))]


def _accepted(request: Request, outcome: WriteResult) -> Response:
    """202: stored and queued; the answer will be a ClaimResponse. A replay (AT-7) answers the
    same way, marked ``Idempotent-Replayed``. The in-process worker, if any, is woken once the
    transaction has committed (background tasks run after the response)."""
    response = resource_response(request, outcome.stored, status=202, location=True)
    if outcome.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    worker = getattr(request.app.state, "claim_worker", None)
    if worker is not None and not outcome.replayed:
        response.background = BackgroundTask(worker.nudge)
    return response


@router.post(f"/{CLAIM}")
async def create(
    request: Request,
    caller: ClaimCreate,  # authenticate before reading the body
    body: FhirBody,
    service: Service,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> Response:
    expect_resource_type(body, CLAIM)
    outcome = await service.create(body, caller, idempotency_key=idempotency_key)
    return _accepted(request, outcome)


@router.post(f"/{CLAIM}/{{logical_id}}/$cancel")
async def cancel(
    request: Request, logical_id: str, caller: ClaimCancel, body: FhirBody, service: Service
) -> Response:
    expect_resource_type(body, "Parameters")
    outcome = await service.cancel(logical_id, body, caller)
    return _accepted(request, outcome)


@router.get(f"/{CLAIM}")
async def search_claims(request: Request, caller: ClaimSearch, service: Service) -> Response:
    page = await service.search(CLAIM, request.query_params, caller)
    return bundle_response(bundles.searchset(request, CLAIM, page))


@router.get(f"/{CLAIM}/{{logical_id}}")
async def read_claim(
    request: Request, logical_id: str, caller: ClaimRead, service: Service
) -> Response:
    return resource_response(request, await service.read(CLAIM, logical_id, caller))


@router.get(f"/{CLAIM}/{{logical_id}}/_history/{{version_id}}")
async def vread_claim(
    request: Request, logical_id: str, version_id: str, caller: ClaimRead, service: Service
) -> Response:
    version = version_number(version_id)
    if version is None:
        raise NotFound(f"{CLAIM}/{logical_id}/_history/{version_id[:20]} is not known")
    stored = await service.vread(CLAIM, logical_id, version, caller)
    return resource_response(request, stored)


@router.get(f"/{CLAIM_RESPONSE}")
async def search_responses(
    request: Request, caller: ClaimResponseSearch, service: Service
) -> Response:
    page = await service.search(CLAIM_RESPONSE, request.query_params, caller)
    return bundle_response(bundles.searchset(request, CLAIM_RESPONSE, page))


@router.get(f"/{CLAIM_RESPONSE}/{{logical_id}}")
async def read_response(
    request: Request, logical_id: str, caller: ClaimResponseRead, service: Service
) -> Response:
    stored = await service.read(CLAIM_RESPONSE, logical_id, caller)
    return resource_response(request, stored)


@router.get(f"/{CLAIM_RESPONSE}/{{logical_id}}/_history/{{version_id}}")
async def vread_response(
    request: Request, logical_id: str, version_id: str, caller: ClaimResponseRead, service: Service
) -> Response:
    version = version_number(version_id)
    if version is None:
        raise NotFound(f"{CLAIM_RESPONSE}/{logical_id}/_history/{version_id[:20]} is not known")
    stored = await service.vread(CLAIM_RESPONSE, logical_id, version, caller)
    return resource_response(request, stored)
