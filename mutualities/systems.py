"""The URIs a fund reads and writes (docs/architecture.md 4b, domain ID-14, ID-18, ID-20, AT-4..AT-6).

The mock funds are another organisation's software: they keep their own copy of these constants and
never import the gateway's (the two talk only over HTTP).
"""

from __future__ import annotations

from typing import Final

_CORE: Final = "https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/"
_LEGACY: Final = "https://www.ehealth.fgov.be/standards/fhir/NamingSystem/"

SSIN: Final = _CORE + "ssin"
NIHDI: Final = _CORE + "nihdi"
NIHDI_PROFESSIONAL: Final = _CORE + "nihdi-professional"
INSURER: Final = _CORE + "insurancenumber"
NIHDI_NOMENCLATURE: Final = _CORE + "be-ns-nihdi-nomenclature"
# The number a fund gives its member (spelled so in hl7-be core; hl7-be/eattestation ex11).
MEMBERSHIP: Final = _CORE + "insurancymembership"

# ID-22: legacy aliases accepted on input.
SSIN_ALIASES: Final = frozenset({SSIN, _LEGACY + "ssin"})
NIHDI_ALIASES: Final = frozenset({NIHDI_PROFESSIONAL, NIHDI, _LEGACY + "nihdi-practitioner"})

# AT-4: the attestation number assigned by the insurer.
ATTESTATION: Final = "https://www.mycarenet.be/eattest"
# AT-4: adjudication category of the legal fee per service (hl7-be/eattestation ex12).
DECISION_VALUES: Final = (
    "https://www.ehealth.fgov.be/standards/fhir/mycarenet/CodeSystem/decision-values"
)
# AT-6: cancellation reasons A..G (hl7-be/eattestation BeCSEattestationCancelReason.fsh).
CANCEL_REASON: Final = "https://www.ehealth.fgov.be/standards/fhir/eattestation/CodeSystem/be-cs-eattestation-cancel-reason"

# Messaging (hl7-be/eattestation BeEattestationRequest / BeEattestationResponse, examples ex11-ex17).
MESSAGE_EVENTS: Final = (
    "https://www.ehealth.fgov.be/standards/fhir/mycarenet/CodeSystem/message-events"
)
EATTEST_ERRORS: Final = (
    "https://www.ehealth.fgov.be/standards/fhir/eattestation/CodeSystem/be-cs-eattestation-errors"
)
HCPARTY: Final = "https://www.ehealth.fgov.be/standards/fhir/core/CodeSystem/cd-hcparty"

# FHIR R4 terminology.
ADJUDICATION: Final = "http://terminology.hl7.org/CodeSystem/adjudication"
CLAIM_TYPE: Final = "http://terminology.hl7.org/CodeSystem/claim-type"
PAYMENT_TYPE: Final = "http://terminology.hl7.org/CodeSystem/ex-paymenttype"

# Ours: the refusal codes, the FHIRPath of a fault, what a ClaimResponse reports, the gateway's key.
MUTUALITY_ERROR: Final = "urn:ehealth-gateway:mutuality-error"
ERROR_EXPRESSION: Final = "urn:ehealth-gateway:fhirpath-expression"
MUTUALITY_EVENT: Final = "urn:ehealth-gateway:mutuality-event"
IDEMPOTENCY_KEY: Final = "urn:ehealth-gateway:idempotency-key"

# Maximum billing on a settlement (mutualities/maximum_billing.py): the extension stating the
# household's counter, and the adjudication category of the share it pays.
MAXIMUM_BILLING: Final = "urn:ehealth-gateway:maximum-billing"
GATEWAY_ADJUDICATION: Final = "urn:ehealth-gateway:adjudication"
