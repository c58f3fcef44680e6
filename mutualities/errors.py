"""The coded reasons a fund refuses a claim or a cancellation (domain AT-5), and where the fault is.

Codes live in the system ``urn:ehealth-gateway:mutuality-error`` (the official list is published on
mycarenet.be only, AT-5). The hl7-be eattestation guide's CodeSystem ``be-cs-eattestation-errors``
is a fragment that publishes two codes; where a fault is one of those, the answer carries the
guide's code too (``GUIDE_CODES``). The funds write no other code in the guide's system: a code
they made up there would pass for MyCareNet's. Each fault carries the FHIRPath of the element at fault, evaluated on the
Claim that was sent (``Claim.item[0].servicedDate``; indexes count from 0 as in FHIRPath).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorCode(StrEnum):
    INVALID_CLAIM = "INVALID_CLAIM"
    """An element the fund needs is missing or malformed (AT-3)."""
    WRONG_INSURER = "WRONG_INSURER"
    """``Claim.insurer`` names another fund than the one that received the claim."""
    NOT_A_MEMBER = "NOT_A_MEMBER"
    """The patient is not insured with this fund (AT-1: the insurer checks insurability)."""
    UNKNOWN_NOMENCLATURE_CODE = "UNKNOWN_NOMENCLATURE_CODE"
    """The code is not in this fund's tariff table (ID-18)."""
    FUTURE_DATE = "FUTURE_DATE"
    """The service date is after today (Europe/Brussels)."""
    DUPLICATE_ATTESTATION = "DUPLICATE_ATTESTATION"
    """The same service (provider, patient, date, code, count) is already attested (AT-2, AT-7)."""
    UNKNOWN_ATTESTATION = "UNKNOWN_ATTESTATION"
    """A cancellation names an attestation number this fund never issued (AT-6)."""
    INVALID_CANCEL_REASON = "INVALID_CANCEL_REASON"
    """A cancellation carries no reason, or one outside A..G (AT-6)."""
    MISSING_PRACTITIONERROLE_PRACTITIONER_REFERENCE = (
        "MISSING_PRACTITIONERROLE_PRACTITIONER_REFERENCE"
    )
    """The provider's PractitionerRole in the message names no Practitioner (the guide's code,
    hl7-be/eattestation ex17)."""


DISPLAY: dict[ErrorCode, str] = {
    ErrorCode.INVALID_CLAIM: "Missing or malformed element",
    ErrorCode.WRONG_INSURER: "Claim addressed to another insurer",
    ErrorCode.NOT_A_MEMBER: "Patient is not a member of this insurer",
    ErrorCode.UNKNOWN_NOMENCLATURE_CODE: "Unknown nomenclature code",
    ErrorCode.FUTURE_DATE: "Service date is in the future",
    ErrorCode.DUPLICATE_ATTESTATION: "Service already attested",
    ErrorCode.UNKNOWN_ATTESTATION: "Unknown attestation number",
    ErrorCode.INVALID_CANCEL_REASON: "Missing or unknown cancellation reason",
    ErrorCode.MISSING_PRACTITIONERROLE_PRACTITIONER_REFERENCE: (
        "The provider's PractitionerRole names no Practitioner"
    ),
}


@dataclass(frozen=True)
class Fault:
    """One refusal reason: a code, the FHIRPath of the element at fault, the item it concerns."""

    code: ErrorCode
    expression: str
    item_sequence: int | None = None


class ProtocolError(StrEnum):
    """Why a request is not a claim the fund can answer (HTTP 4xx/5xx with an OperationOutcome)."""

    MISSING_IDEMPOTENCY_KEY = "MISSING_IDEMPOTENCY_KEY"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    NOT_A_CLAIM = "NOT_A_CLAIM"
    INVALID_REQUEST = "INVALID_REQUEST"
    UNKNOWN_FUND = "UNKNOWN_FUND"
    UNAVAILABLE = "UNAVAILABLE"
    NOT_A_MESSAGE = "NOT_A_MESSAGE"
    """``$process-message`` needs an eAttest request Bundle: type message, a MessageHeader with
    the event eattest-create or eattest-cancel, and the Claim."""
    MISSING_BUNDLE_ID = "MISSING_BUNDLE_ID"
    """The request Bundle has no id, which is its idempotency key (the guide's code)."""


# The codes hl7-be/eattestation publishes in be-cs-eattestation-errors (a fragment of MyCareNet's).
GUIDE_CODES = frozenset(
    {
        ProtocolError.MISSING_BUNDLE_ID.value,
        ErrorCode.MISSING_PRACTITIONERROLE_PRACTITIONER_REFERENCE.value,
    }
)
