"""HTTP routes for Communication (feedback, RX-8): thin, the rules live in ``service``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from gateway.access.routes import add_instance_reads
from gateway.access.service import service_dependency
from gateway.communications.auth import FeedbackCreate, FeedbackSearch
from gateway.communications.service import RESOURCE, FeedbackService
from gateway.fhir import bundles
from gateway.fhir.negotiation import FhirBody, expect_resource_type
from gateway.fhir.responses import bundle_response, resource_response

router = APIRouter(prefix=f"/{RESOURCE}")


build_service = service_dependency(FeedbackService)
Service = Annotated[FeedbackService, Depends(build_service)]


@router.post("")
async def create(
    request: Request,
    caller: FeedbackCreate,  # authenticate before reading the body
    body: FhirBody,
    service: Service,
) -> Response:
    """RX-8 createFeedback: a pharmacy's message to the author of a prescription."""
    expect_resource_type(body, RESOURCE)
    stored = await service.create(body, caller)
    return resource_response(request, stored, status=201, location=True)


@router.get("")
async def search(request: Request, caller: FeedbackSearch, service: Service) -> Response:
    """RX-8 listFeedbacks: by prescription (``about``) and by date (``sent``)."""
    page = await service.search(request.query_params, caller)
    return bundle_response(bundles.searchset(request, RESOURCE, page))


add_instance_reads(router, RESOURCE, FeedbackService)
