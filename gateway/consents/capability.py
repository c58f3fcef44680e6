"""What the Consent routes cannot say about themselves, for the CapabilityStatement
(``gateway.capability``; docs/architecture.md 4c)."""

from __future__ import annotations

from typing import Final

from gateway.access.facts import RESOURCE
from gateway.consents.searching import SEARCH_PARAMS
from gateway.fhir.conformance import FHIR_SEARCH_PARAMETER, SearchParam, TypeDescription

DESCRIPTION: Final = TypeDescription(
    type=RESOURCE,
    documentation="Informed consent, exclusions and therapeutic relationships, told apart by "
    "a category coding of urn:ehealth-gateway:consent-kind (informed-consent, exclusion, "
    "therapeutic-relationship). Withdrawing, lifting or ending is an update to status "
    "inactive. Providers prove the patient's presence with verification[0] (eID card number "
    "and read time) or the X-eID-Card-Number and X-eID-Read-At headers.",
    search_names=SEARCH_PARAMS,
    search_params=(
        SearchParam(
            "identifier",
            "token",
            "system|value of an identifier the registering software gave the record; one record, "
            "decided as a read of it: one the caller may not read is answered like an unknown "
            "identifier (an empty Bundle)",
            FHIR_SEARCH_PARAMETER + "clinical-identifier",
        ),
        SearchParam(
            "patient",
            "reference",
            "with the :identifier modifier only: patient:identifier=<ssin-system>|<SSIN> "
            "(a patient may leave it out: his own)",
            FHIR_SEARCH_PARAMETER + "clinical-patient",
        ),
        SearchParam(
            "actor",
            "reference",
            "the provider's NIHDI number: actor=<nihdi>, actor=<system>|<nihdi> or "
            "actor:identifier=<system>|<nihdi>",
            FHIR_SEARCH_PARAMETER + "Consent-actor",
        ),
        SearchParam(
            "category",
            "token",
            "informed-consent, exclusion, therapeutic-relationship (system "
            "urn:ehealth-gateway:consent-kind); comma-separated codes are OR-ed",
            FHIR_SEARCH_PARAMETER + "Consent-category",
        ),
        SearchParam(
            "status", "token", "active or inactive", FHIR_SEARCH_PARAMETER + "Consent-status"
        ),
    ),
)
