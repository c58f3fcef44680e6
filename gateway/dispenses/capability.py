"""What the MedicationDispense routes implement, for the CapabilityStatement."""

from __future__ import annotations

from typing import Any

from fhir_profiles import systems
from gateway.fhir import search

_FHIR_SP = "http://hl7.org/fhir/SearchParameter/"


def capability_entry() -> dict[str, Any]:
    return {
        "type": "MedicationDispense",
        "profile": systems.DISPENSE_PROFILE,
        "interaction": [{"code": "create"}, {"code": "read"}, {"code": "search-type"}],
        "versioning": "versioned",
        "updateCreate": False,
        "conditionalCreate": False,
        "operation": [
            {
                "name": "undo",
                "definition": "urn:ehealth-gateway:OperationDefinition:MedicationDispense-undo",
                "documentation": "POST /MedicationDispense/{id}/$undo (optional Parameters: "
                "reason): the pharmacy that dispensed, within the undo window (default 24 h); "
                "the dispense becomes entered-in-error and the prescription is open again (RX-7).",
            }
        ],
        "searchParam": [
            {
                "name": "prescription",
                "definition": _FHIR_SP + "MedicationDispense-prescription",
                "type": "reference",
                "documentation": "MedicationRequest/{id}: every dispense of that prescription, "
                "for whoever may read it (its author included)",
            },
            search.PATIENT_IDENTIFIER_PARAMETER,
            {
                "name": "status",
                "definition": _FHIR_SP + "medications-status",
                "type": "token",
                "documentation": "completed | entered-in-error (comma-separated: OR)",
            },
            {"name": "_count", "type": "number", "documentation": "page size"},
        ],
    }
