"""What the Claim and ClaimResponse routes implement, for the CapabilityStatement."""

from __future__ import annotations

from typing import Any

from fhir_profiles.rules.claim_codes import ATTESTATION

_FHIR_SP = "http://hl7.org/fhir/SearchParameter/"
_STATE_DOC = (
    "where the claim stands (gateway tag urn:ehealth-gateway:claim-state): queued, delivered, "
    "refused, settled, failed, cancelled; comma-separated codes are OR-ed"
)
_COUNT = {
    "name": "_count",
    "type": "number",
    "documentation": "page size (default 20, at most 200); follow the Bundle's next link",
}
_PATIENT = {
    "name": "patient",
    "definition": _FHIR_SP + "Claim-patient",
    "type": "reference",
    "documentation": "with the :identifier modifier only: patient:identifier=<ssin-system>|<SSIN>",
}


def claim_entry() -> dict[str, Any]:
    return {
        "type": "Claim",
        "profile": "https://www.ehealth.fgov.be/standards/fhir/eattestation/StructureDefinition/be-eattestation-claim",
        "documentation": (
            "eAttest (MyCareNet) attestations. POST answers 202 Accepted: the claim is stored and "
            "queued for the patient's sickness fund; its answer becomes a ClaimResponse "
            "(ClaimResponse?request=Claim/{id}). Idempotent on the provider's request key: the "
            "Idempotency-Key header, else the Claim's own identifier (AT-7)."
        ),
        "interaction": [
            {"code": "create"},
            {"code": "read"},
            {"code": "vread"},
            {"code": "search-type"},
        ],
        "versioning": "versioned",
        "readHistory": False,
        "updateCreate": False,
        "conditionalCreate": False,
        "conditionalRead": "not-supported",
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
        "searchParam": [
            _PATIENT,
            {"name": "state", "type": "token", "documentation": _STATE_DOC},
            _COUNT,
        ],
        "operation": [
            {
                "name": "cancel",
                "definition": "urn:ehealth-gateway:OperationDefinition/Claim-cancel",
                "documentation": (
                    "POST Claim/{id}/$cancel with Parameters reason = A..G (AT-6); the "
                    "cancellation is forwarded to the fund; cancelling twice answers as the first "
                    "time"
                ),
            }
        ],
    }


def claim_response_entry() -> dict[str, Any]:
    return {
        "type": "ClaimResponse",
        "documentation": (
            "The sickness fund's answer to a Claim, one per claim: acknowledged (with the "
            "attestation number and legal fees), refused (error[] with coded reasons and the "
            "FHIRPath of the element), then settled (payment) or cancelled, as new versions."
        ),
        "interaction": [{"code": "read"}, {"code": "vread"}, {"code": "search-type"}],
        "versioning": "versioned",
        "readHistory": False,
        "updateCreate": False,
        "conditionalCreate": False,
        "conditionalRead": "not-supported",
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
        "searchParam": [
            {
                "name": "request",
                "definition": _FHIR_SP + "ClaimResponse-request",
                "type": "reference",
                "documentation": "Claim/{id}: the answer to that claim",
            },
            {
                "name": "identifier",
                "definition": _FHIR_SP + "ClaimResponse-identifier",
                "type": "token",
                "documentation": f"the attestation number: {ATTESTATION}|<number>",
            },
            {**_PATIENT, "definition": _FHIR_SP + "ClaimResponse-patient"},
            {"name": "state", "type": "token", "documentation": _STATE_DOC},
            _COUNT,
        ],
    }
