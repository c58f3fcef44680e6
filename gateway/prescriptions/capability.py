"""What the MedicationRequest routes implement, for the CapabilityStatement."""

from __future__ import annotations

from typing import Any

_FHIR_SP = "http://hl7.org/fhir/SearchParameter/"


def capability_entry() -> dict[str, Any]:
    return {
        "type": "MedicationRequest",
        "profile": "https://www.ehealth.fgov.be/standards/fhir/medication/StructureDefinition/be-medicationprescription",
        "interaction": [
            {"code": "create"},
            {"code": "read"},
            {"code": "vread"},
            {"code": "history-instance"},
            {"code": "search-type"},
        ],
        "versioning": "versioned",
        "readHistory": True,
        "updateCreate": False,
        "conditionalCreate": True,
        "conditionalRead": "not-supported",
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
        "operation": [
            {
                "name": "set-visibility",
                "definition": "urn:ehealth-gateway:OperationDefinition:MedicationRequest-set-visibility",
                "documentation": "POST /MedicationRequest/{id}/$set-visibility with Parameters: "
                "pharmacies = all | one | none, pharmacy = the organisation NIHDI when one, "
                "prescribers = open | closed (RX-13, RX-14). The patient, or the author at the "
                "patient's request (open/closed only). The choice is shown as the extension "
                "urn:ehealth-gateway:extension:visibility.",
            }
        ],
        "searchParam": [
            {
                "name": "identifier",
                "definition": _FHIR_SP + "clinical-identifier",
                "type": "token",
                "documentation": "system|value; a bare RID (BEP + 9) means the Recip-e RID system",
            },
            {
                "name": "patient",
                "definition": _FHIR_SP + "clinical-patient",
                "type": "reference",
                "documentation": "with the :identifier modifier only: patient:identifier=<ssin-system>|<SSIN>",
            },
            {
                "name": "status",
                "definition": _FHIR_SP + "medications-status",
                "type": "token",
                "documentation": "comma-separated codes are OR-ed",
            },
            {
                "name": "authoredon",
                "definition": _FHIR_SP + "MedicationRequest-authoredon",
                "type": "date",
                "documentation": "prefixes eq, ge, gt, le, lt; dates without a zone are Europe/Brussels",
            },
            {
                "name": "_count",
                "type": "number",
                "documentation": "page size (default 20, at most 200); follow the Bundle's next link",
            },
        ],
    }
