"""What the Consent routes implement, for the CapabilityStatement (docs/architecture.md 4c)."""

from __future__ import annotations

from typing import Any

_FHIR_SP = "http://hl7.org/fhir/SearchParameter/"


def capability_entry() -> dict[str, Any]:
    return {
        "type": "Consent",
        "documentation": "Informed consent, exclusions and therapeutic relationships, told apart by "
        "a category coding of urn:ehealth-gateway:consent-kind (informed-consent, exclusion, "
        "therapeutic-relationship). Withdrawing, lifting or ending is an update to status "
        "inactive. Providers prove the patient's presence with verification[0] (eID card number "
        "and read time) or the X-eID-Card-Number and X-eID-Read-At headers.",
        "interaction": [
            {"code": "create"},
            {"code": "read"},
            {"code": "vread"},
            {"code": "update"},
            {"code": "history-instance"},
            {"code": "search-type"},
        ],
        "versioning": "versioned",
        "readHistory": True,
        "updateCreate": False,
        "conditionalCreate": False,
        "conditionalRead": "not-supported",
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
        "searchParam": [
            {
                "name": "identifier",
                "definition": _FHIR_SP + "clinical-identifier",
                "type": "token",
                "documentation": "system|value of an identifier the registering software gave the "
                "record; one record, decided as a read of it: one the caller may not read is "
                "answered like an unknown identifier (an empty Bundle)",
            },
            {
                "name": "patient",
                "definition": _FHIR_SP + "clinical-patient",
                "type": "reference",
                "documentation": "with the :identifier modifier only: patient:identifier=<ssin-system>|<SSIN> "
                "(a patient may leave it out: his own)",
            },
            {
                "name": "actor",
                "definition": _FHIR_SP + "Consent-actor",
                "type": "reference",
                "documentation": "the provider's NIHDI number: actor=<nihdi>, actor=<system>|<nihdi> "
                "or actor:identifier=<system>|<nihdi>",
            },
            {
                "name": "category",
                "definition": _FHIR_SP + "Consent-category",
                "type": "token",
                "documentation": "informed-consent, exclusion, therapeutic-relationship "
                "(system urn:ehealth-gateway:consent-kind); comma-separated codes are OR-ed",
            },
            {
                "name": "status",
                "definition": _FHIR_SP + "Consent-status",
                "type": "token",
                "documentation": "active or inactive",
            },
            {
                "name": "_count",
                "type": "number",
                "documentation": "page size (default 20, at most 200); follow the Bundle's next link",
            },
        ],
    }
