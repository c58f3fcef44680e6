"""The eAttest code systems and identifier systems a claim uses (domain AT-2..AT-6, ID-13).

Kept beside the claim rules rather than in ``fhir_profiles.systems``, which lists the naming systems
of the Belgian core profiles; these belong to the hl7-be eattestation guide.
"""

from __future__ import annotations

from typing import Final

# AT-4: the attestation number assigned by the insurer (hl7-be/eattestation alias $eattestid).
ATTESTATION: Final = "https://www.mycarenet.be/eattest"

_EATTESTATION_CS: Final = "https://www.ehealth.fgov.be/standards/fhir/eattestation/CodeSystem/"
# AT-2: the attestation types (BeCSEattestationTypes), on Claim.subType as in BeEattestationClaim.
ATTESTATION_TYPE: Final = _EATTESTATION_CS + "be-cs-eattestation-types"
ATTESTATION_TYPES: Final = frozenset(
    {"physiotherapy", "dentistry", "generalpractice", "specializedmedicine", "speechtherapy"}
)
# AT-6: the reasons for a cancellation (BeCSEattestationCancelReason).
CANCEL_REASON: Final = _EATTESTATION_CS + "be-cs-eattestation-cancel-reason"
CANCEL_REASONS: Final = {
    "A": "patient error",
    "B": "provider error",
    "C": "error in one of the eAttestation elements",
    "D": "duplicate",
    "E": "eAttestation replaced by eFact",
    "F": "eAttestation replaced by paper attestation form",
    "G": "eAttestation not applicable in this case",
}

# ID-13: the national unions; a fund's code lies within its union's hundred (code // 100 * 100).
UNION_CODES: Final = frozenset({"100", "200", "300", "400", "500", "600", "900"})

# FHIR R4 terminology (BeEattestationClaim fixes priority and insurance; we fill them when absent).
CLAIM_TYPE: Final = "http://terminology.hl7.org/CodeSystem/claim-type"
PROCESS_PRIORITY: Final = "http://terminology.hl7.org/CodeSystem/processpriority"
MANDATORY_COVERAGE: Final = "use of mandatory insurance coverage, no further details provided here."

# Ours: a provider who knowingly sends a second attestation of the same service within the
# duplicate window says so with this extension on the Claim (valueBoolean true; AT-7).
DUPLICATE_OVERRIDE: Final = "urn:ehealth-gateway:extension:duplicate-override"

CURRENCY: Final = "EUR"


def union_of(fund_code: str) -> str:
    """ID-13 [A]: the union code of a fund code (``306`` -> ``300``); the input must be 3 digits."""
    return f"{int(fund_code) // 100 * 100:03d}"
