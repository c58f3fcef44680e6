"""What the MedicationDispense routes cannot say about themselves, for the CapabilityStatement and
the OperationDefinitions (``gateway.capability``)."""

from __future__ import annotations

from typing import Final

from fhir_profiles import systems
from gateway.dispenses.service import RESOURCE, SEARCH_PARAMS
from gateway.fhir import search
from gateway.fhir.conformance import (
    FHIR_SEARCH_PARAMETER,
    OperationSpec,
    SearchParam,
    TypeDescription,
    reason_param,
    returned,
)

DESCRIPTION: Final = TypeDescription(
    type=RESOURCE,
    documentation="A pharmacy's delivery of a prescription (RX-25): exactly one current dispense "
    "per prescription; the prescription becomes completed in the same transaction.",
    profile=systems.DISPENSE_PROFILE,
    search_names=SEARCH_PARAMS,
    search_params=(
        SearchParam(
            "prescription",
            "reference",
            "MedicationRequest/{id}: every dispense of that prescription, for whoever may read "
            "it (its author included)",
            FHIR_SEARCH_PARAMETER + "MedicationDispense-prescription",
        ),
        SearchParam.of(search.PATIENT_IDENTIFIER_PARAMETER),
        SearchParam(
            "status",
            "token",
            "completed | entered-in-error (comma-separated: OR)",
            FHIR_SEARCH_PARAMETER + "medications-status",
        ),
    ),
    operations=(
        OperationSpec(
            "undo",
            "the pharmacy that dispensed, within the undo window (default 24 h) and before "
            "archiving: the dispense becomes entered-in-error and the prescription is open again "
            "(RX-7). If-Match with a stale version is 412.",
            (
                reason_param("why the delivery is undone; becomes statusReasonCodeableConcept"),
                returned(RESOURCE, "the dispense, now entered-in-error"),
            ),
        ),
    ),
)
