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


# -- The eAttest message (hl7-be eattestation BeEattestationRequest / BeEattestationResponse) ----

_EATTESTATION_SD: Final = (
    "https://www.ehealth.fgov.be/standards/fhir/eattestation/StructureDefinition/"
)
# The MyCareNet message events (MessageHeader.eventCoding) of a request and of its answer.
MESSAGE_EVENTS: Final = (
    "https://www.ehealth.fgov.be/standards/fhir/mycarenet/CodeSystem/message-events"
)
EVENT_CREATE: Final = "eattest-create"
EVENT_CANCEL: Final = "eattest-cancel"
EVENT_CREATE_RESPONSE: Final = "eattestresponse-create"
EVENT_CANCEL_RESPONSE: Final = "eattestresponse-cancel"
EVENT_REJECT: Final = "reject"  # the guide's rejection message (ex17)
# AT-5: the guide's error codes (BeCSEattestationErrors, a fragment: the full list is MyCareNet's).
ERRORS: Final = _EATTESTATION_CS + "be-cs-eattestation-errors"
MISSING_BUNDLE_ID: Final = "MISSING_BUNDLE_ID"
MISSING_PRACTITIONER_REFERENCE: Final = "MISSING_PRACTITIONERROLE_PRACTITIONER_REFERENCE"
REQUEST_PROFILE: Final = _EATTESTATION_SD + "be-eattestation-request"
RESPONSE_PROFILE: Final = _EATTESTATION_SD + "be-eattestation-response"

# Extensions of BeEattestationClaim.
SUPPLEMENT: Final = _EATTESTATION_SD + "be-ext-eattestation-supplement"
ITEM_SUPPLEMENT: Final = _EATTESTATION_SD + "be-ext-eattestation-item-supplement"
ITEM_PREAUTH: Final = _EATTESTATION_SD + "be-ext-eattestation-item-preauthref"
REQUESTER_STANDARD: Final = _EATTESTATION_SD + "be-ext-prescription-requester-standard"

# Care team (Claim.careTeam): FHIR's role codes, the Belgian professions as qualification.
CARE_TEAM_ROLE: Final = "http://terminology.hl7.org/CodeSystem/claimcareteamrole"
CD_HCPARTY: Final = "https://www.ehealth.fgov.be/standards/fhir/core/CodeSystem/cd-hcparty"
ROLE_PRIMARY: Final = "primary"
ROLE_GMF_HOLDER: Final = "other"  # with qualification persphysician (be-inv-gmf-holder)
ROLE_ASSISTANT: Final = "assist"  # a trainee (persphysician) or an oral hygienist
PHYSICIAN: Final = "persphysician"
ORAL_HYGIENIST: Final = "persoraldentalhygienist"

# Item details the invariants read.
TRANSPLANTATION: Final = (
    "https://www.ehealth.fgov.be/standards/fhir/nihdi-terminology/CodeSystem/"
    "be-cs-claim-transplantation-code"
)
HOSPITAL_SERVICE: Final = "https://www.ehealth.fgov.be/standards/fhir/nihdi-terminology/CodeSystem/be-cs-hospital-service-cd"
SNOMED: Final = "http://snomed.info/sct"
# be-vs-toothnumber-bodysite: the SNOMED CT structures of the ISO 3950 tooth numbers 11-48
# (permanent) and 51-85 (deciduous), as the MyCareNet concept map BeCMISOToothSnomedCT lists them.
TOOTH_NUMBERS: Final = frozenset(
    {
        "422653006", "424877001", "860767006", "57826002", "36492000", "865995000", "863902006",
        "68085002", "424399000", "423185002", "860780009", "61897005", "23226009", "865988009",
        "863901004", "87704003", "425106001", "423331005", "860782001", "2400006", "24573005",
        "866006002", "863898000", "74344005", "424575004", "423937004", "860785004", "80140008",
        "8873007", "866005003", "863899008", "38994002", "88824007", "65624003", "30618001",
        "17505006", "27855007", "51678005", "43622005", "73937000", "45234009", "51943008",
        "89552004", "14770005", "43281008", "38896004", "49330006", "67834006", "22445006",
        "6062009", "58646007", "61868007",
    }
)  # fmt: skip
