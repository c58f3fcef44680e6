"""``GET /fhir/metadata``: a CapabilityStatement that lists exactly what is implemented.

Each resource family declares its own entry beside its routes (``capability_entry``); this module
only assembles them, so adding a route and forgetting to declare it shows up in one place. It sits
at the top with the app (docs/architecture.md 3b), since it imports every family.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from gateway import __version__
from gateway.audit_events.capability import capability_entry as audit_event_entry
from gateway.auth.state import TOKEN_PATH
from gateway.claims.capability import claim_entry, claim_response_entry
from gateway.consents.capability import capability_entry as consent_entry
from gateway.dispenses.capability import capability_entry as medication_dispense_entry
from gateway.fhir.media import FHIR_JSON
from gateway.prescriptions.capability import capability_entry as medication_request_entry
from gateway.urls import fhir_base, public_base

router = APIRouter()

_STARTED = datetime.now(UTC).isoformat(timespec="seconds")


def _security(public: str) -> dict[str, Any]:
    """SMART on FHIR security (FHIR R4 capabilitystatement, SMART App Launch "oauth-uris")."""
    return {
        "cors": False,
        "service": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                    }
                ],
                "text": "OAuth 2.0 client credentials with private_key_jwt (certificate from the gateway's CA)",
            }
        ],
        "extension": [
            {
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": [{"url": "token", "valueUri": public + TOKEN_PATH}],
            }
        ],
        "description": "Every interaction except metadata needs a bearer access token; "
        f"see {public}/.well-known/smart-configuration",
    }


def capability_statement(base: str, public: str) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": _STARTED,
        "publisher": "eHealth exchange and e-prescription gateway",
        "kind": "instance",
        "software": {"name": "ehealth-gateway", "version": __version__},
        "implementation": {"description": "Belgian eHealth exchange gateway", "url": base},
        "fhirVersion": "4.0.1",
        "format": [FHIR_JSON, "json"],
        "rest": [
            {
                "mode": "server",
                "security": _security(public),
                "resource": [
                    medication_request_entry(),
                    medication_dispense_entry(),
                    consent_entry(),
                    audit_event_entry(),
                    claim_entry(),
                    claim_response_entry(),
                ],
            }
        ],
    }


@router.get("/metadata")
async def metadata(request: Request) -> Response:
    body = orjson.dumps(capability_statement(fhir_base(request), public_base(request)))
    return Response(body, media_type=FHIR_JSON)
