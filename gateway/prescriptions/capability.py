"""What the MedicationRequest routes implement, for the CapabilityStatement."""

from __future__ import annotations

from typing import Any

from fhir_profiles import systems
from gateway.fhir import search

_FHIR_SP = "http://hl7.org/fhir/SearchParameter/"


def capability_entry() -> dict[str, Any]:
    return {
        "type": "MedicationRequest",
        "profile": systems.PRESCRIPTION_PROFILE,
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
            *_lifecycle_operations(),
            {
                "name": "set-visibility",
                "definition": "urn:ehealth-gateway:OperationDefinition:MedicationRequest-set-visibility",
                "documentation": "POST /MedicationRequest/{id}/$set-visibility with Parameters: "
                "pharmacies = all | one | none, pharmacy = the organisation NIHDI when one, "
                "prescribers = open | closed (RX-13, RX-14). The patient, or the author at the "
                "patient's request (open/closed only). The choice is shown as the extension "
                "urn:ehealth-gateway:extension:visibility.",
            },
        ],
        "searchParam": [
            {
                "name": "identifier",
                "definition": _FHIR_SP + "clinical-identifier",
                "type": "token",
                "documentation": "system|value; a bare RID (BEP + 9) means the Recip-e RID system",
            },
            search.PATIENT_IDENTIFIER_PARAMETER,
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
                "documentation": search.DATE_DOCUMENTATION,
            },
            {
                "name": "_count",
                "type": "number",
                "documentation": "page size (default 20, at most 200); follow the Bundle's next link",
            },
        ],
    }


# RX-7, RX-15, docs/architecture.md 6 (docs/pharmacy.md): the lifecycle steps a client can ask for.
_LIFECYCLE = {
    "revoke": "the author withdraws an open or in-process prescription; Parameters: reason "
    "(valueString or valueCodeableConcept), required. Status cancelled with that statusReason.",
    "take-in-process": "a pharmacy takes it in process (optional Parameters: rid, the RID it "
    "holds); other pharmacies cannot dispense it until it is released.",
    "release": "back to open: the pharmacy holding it (optional rid), or the patient's own "
    "reservation.",
    "reserve": "the patient reserves it at one pharmacy; Parameters: pharmacy (organisation "
    "NIHDI). In process at that pharmacy.",
    "archive": "the pharmacy that delivered it archives it; no undo afterwards.",
}


def _lifecycle_operations() -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "definition": f"urn:ehealth-gateway:OperationDefinition:MedicationRequest-{name}",
            "documentation": f"POST /MedicationRequest/{{id}}/${name}: {text} A state that does "
            "not allow it is 409; If-Match with a stale version is 412.",
        }
        for name, text in _LIFECYCLE.items()
    ]
