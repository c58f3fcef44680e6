"""What the Claim and ClaimResponse routes cannot say about themselves, for the
CapabilityStatement and the OperationDefinitions (``gateway.capability``)."""

from __future__ import annotations

from typing import Final

from fhir_profiles.rules.claim_codes import ATTESTATION
from gateway.claims.model import CLAIM, CLAIM_RESPONSE
from gateway.claims.service import CLAIM_SEARCH_PARAMS, RESPONSE_SEARCH_PARAMS
from gateway.fhir.conformance import (
    FHIR_SEARCH_PARAMETER,
    OperationParam,
    OperationSpec,
    SearchParam,
    TypeDescription,
    returned,
)

_STATE = SearchParam(
    "state",
    "token",
    "where the claim stands (gateway tag urn:ehealth-gateway:claim-state): queued, delivered, "
    "refused, settled, failed, cancelled; comma-separated codes are OR-ed",
)
_PATIENT_DOC = "with the :identifier modifier only: patient:identifier=<ssin-system>|<SSIN>"

CLAIM_DESCRIPTION: Final = TypeDescription(
    type=CLAIM,
    documentation=(
        "eAttest (MyCareNet) attestations. POST answers 202 Accepted: the claim is stored and "
        "queued for the patient's sickness fund; its answer becomes a ClaimResponse "
        "(ClaimResponse?request=Claim/{id}). Idempotent on the provider's request key: the "
        "Idempotency-Key header, else the Claim's own identifier (AT-7)."
    ),
    profile="https://www.ehealth.fgov.be/standards/fhir/eattestation/StructureDefinition/be-eattestation-claim",
    search_names=CLAIM_SEARCH_PARAMS,
    search_params=(
        SearchParam("patient", "reference", _PATIENT_DOC, FHIR_SEARCH_PARAMETER + "Claim-patient"),
        _STATE,
    ),
    operations=(
        OperationSpec(
            "cancel",
            "the provider cancels an attestation (AT-6); the cancellation is forwarded to the "
            "fund and the answer is 202 like an intake; cancelling twice answers as the first time.",
            (
                OperationParam(
                    "reason",
                    "in",
                    "code",
                    "A..G, the eAttest cancel reason (a valueCode, or a valueCoding of the "
                    "BeCSEattestationCancelReason system)",
                    min=1,
                ),
                returned(CLAIM, "the claim, its cancellation queued"),
            ),
        ),
    ),
)

CLAIM_RESPONSE_DESCRIPTION: Final = TypeDescription(
    type=CLAIM_RESPONSE,
    documentation=(
        "The sickness fund's answer to a Claim, one per claim: acknowledged (with the "
        "attestation number and legal fees), refused (error[] with coded reasons and the "
        "FHIRPath of the element), then settled (payment) or cancelled, as new versions."
    ),
    search_names=RESPONSE_SEARCH_PARAMS,
    search_params=(
        SearchParam(
            "request",
            "reference",
            "Claim/{id}: the answer to that claim",
            FHIR_SEARCH_PARAMETER + "ClaimResponse-request",
        ),
        SearchParam(
            "identifier",
            "token",
            f"the attestation number: {ATTESTATION}|<number>",
            FHIR_SEARCH_PARAMETER + "ClaimResponse-identifier",
        ),
        SearchParam(
            "patient", "reference", _PATIENT_DOC, FHIR_SEARCH_PARAMETER + "ClaimResponse-patient"
        ),
        _STATE,
    ),
)

# POST /fhir/$process-message: FHIR R4's own operation (messageheader-operation-process-message),
# for the eAttest request message (hl7-be BeEattestationRequest); code -> (definition, what).
SYSTEM_OPERATIONS: Final = {
    "process-message": (
        "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message",
        "eAttest (MyCareNet) request messages, synchronous: an eattest-create or eattest-cancel "
        "Bundle (hl7-be BeEattestationRequest) in, the BeEattestationResponse message out (ok "
        "with the fund's ClaimResponse, transient-error: resend the same Bundle id, or "
        "fatal-error with an OperationOutcome). The Bundle id is the request key (AT-7).",
    ),
}
