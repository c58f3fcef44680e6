"""``GET /fhir/metadata``: a CapabilityStatement that lists exactly what is implemented.

Each resource family declares its own entry beside its routes (``capability_entry``); this module
only assembles them, so adding a route and forgetting to declare it shows up in one place.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from gateway import __version__
from gateway.fhir.bundles import fhir_base
from gateway.prescriptions.capability import capability_entry as medication_request_entry

router = APIRouter()

_STARTED = datetime.now(UTC).isoformat(timespec="seconds")


def capability_statement(base: str) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": _STARTED,
        "publisher": "eHealth exchange and e-prescription gateway",
        "kind": "instance",
        "software": {"name": "ehealth-gateway", "version": __version__},
        "implementation": {"description": "Belgian eHealth exchange gateway", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "cors": False,
                    "description": "Every interaction except metadata requires authentication.",
                },
                "resource": [medication_request_entry()],
            }
        ],
    }


@router.get("/metadata")
async def metadata(request: Request) -> Response:
    body = orjson.dumps(capability_statement(fhir_base(request)))
    return Response(body, media_type="application/fhir+json")
