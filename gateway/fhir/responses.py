"""FHIR JSON responses with the headers FHIR REST asks for (ETag, Last-Modified, Location)."""

from __future__ import annotations

from email.utils import format_datetime

from fastapi import Request
from fastapi.responses import Response

from gateway.fhir.media import FHIR_JSON
from gateway.storage.store import StoredVersion
from gateway.urls import fhir_base


def resource_response(
    request: Request, stored: StoredVersion, *, status: int = 200, location: bool = False
) -> Response:
    headers = {
        "ETag": stored.etag,
        "Last-Modified": format_datetime(stored.last_updated, usegmt=True),
    }
    if location:
        headers["Location"] = (
            f"{fhir_base(request)}/{stored.resource_type}/{stored.logical_id}"
            f"/_history/{stored.version_id}"
        )
    return Response(stored.body, status_code=status, media_type=FHIR_JSON, headers=headers)


def bundle_response(body: bytes) -> Response:
    return Response(body, media_type=FHIR_JSON)
