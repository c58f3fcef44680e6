"""HTTP routes for Claim and ClaimResponse: thin, the rules live in ``service``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response
from starlette.background import BackgroundTask

from gateway.access.routes import add_instance_reads, caller_and_body
from gateway.access.service import family_service, service_dependency
from gateway.claims.auth import (
    CAN_CLAIM,
    ClaimCancel,
    ClaimCreate,
    ClaimResponseSearch,
    ClaimSearch,
)
from gateway.claims.messages_intake import MessageIntake
from gateway.claims.model import CLAIM, CLAIM_RESPONSE
from gateway.claims.service import ClaimService, WriteResult
from gateway.fhir import bundles
from gateway.fhir.media import FHIR_JSON_UTF8
from gateway.fhir.negotiation import FhirBody, expect_resource_type
from gateway.fhir.responses import bundle_response, resource_response

router = APIRouter()
REPLAYED_HEADER = "Idempotent-Replayed"


# An async dependency (no thread-pool hop) with the request's Guard facts: clock, request id,
# client software (gateway.access.guard.request_info).
build_service = service_dependency(ClaimService)
Service = Annotated[ClaimService, Depends(build_service)]


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
    request: Request, idempotency_key: Annotated[str | None, Header()] = None
) -> Response:
    """An attestation, once per ``Idempotency-Key`` (AT-7). A hot path: no FastAPI dependencies,
    the same checks in the same order (``gateway.access.service.family_service``)."""
    caller, body = await caller_and_body(request, CAN_CLAIM, CLAIM)
    async with family_service(request, ClaimService) as service:
        outcome = await service.create(body, caller, idempotency_key=idempotency_key)
    return _accepted(request, outcome)


@router.post("/$process-message")
async def process_message(
    request: Request,
    caller: ClaimCreate,  # a care provider's eAttest message: create or cancel
    body: FhirBody,
    service: Service,
) -> Response:
    """FHIR R4 messageheader-operation-process-message, synchronous: the eAttest request message
    in, the answer message out (``messages_intake``)."""
    expect_resource_type(body, "Bundle")
    worker = getattr(request.app.state, "claim_worker", None)
    intake = MessageIntake(service, caller, worker.nudge if worker is not None else None)
    answer = await intake.process(body)
    return Response(
        answer.body, status_code=answer.status, headers=answer.headers, media_type=FHIR_JSON_UTF8
    )


@router.post(f"/{CLAIM}/{{logical_id}}/$cancel")
async def cancel(
    request: Request,
    logical_id: str,
    caller: ClaimCancel,
    body: FhirBody,
    service: Service,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    expect_resource_type(body, "Parameters")
    outcome = await service.cancel(logical_id, body, caller, if_match=if_match)
    return _accepted(request, outcome)


@router.get(f"/{CLAIM}")
async def search_claims(request: Request, caller: ClaimSearch, service: Service) -> Response:
    page = await service.search(request.query_params, caller, CLAIM)
    return bundle_response(bundles.searchset(request, CLAIM, page))


@router.get(f"/{CLAIM_RESPONSE}")
async def search_responses(
    request: Request, caller: ClaimResponseSearch, service: Service
) -> Response:
    page = await service.search(request.query_params, caller, CLAIM_RESPONSE)
    return bundle_response(bundles.searchset(request, CLAIM_RESPONSE, page))


add_instance_reads(router, CLAIM, ClaimService, prefix=f"/{CLAIM}")
add_instance_reads(router, CLAIM_RESPONSE, ClaimService, prefix=f"/{CLAIM_RESPONSE}")
