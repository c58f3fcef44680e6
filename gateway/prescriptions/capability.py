"""What the MedicationRequest routes cannot say about themselves, for the CapabilityStatement and
the OperationDefinitions (``gateway.capability``): the profile, the documentation of the search
parameters ``searching.SEARCH_PARAMS`` accepts, and of the operations and their parameters."""

from __future__ import annotations

from typing import Final

from fhir_profiles import systems
from gateway.fhir import search
from gateway.fhir.conformance import (
    FHIR_SEARCH_PARAMETER,
    OperationParam,
    OperationSpec,
    SearchParam,
    TypeDescription,
    reason_param,
    returned,
)
from gateway.prescriptions.feedback_flag import OPERATION as SET_FEEDBACK
from gateway.prescriptions.operations import OPERATION_NAMES
from gateway.prescriptions.searching import RESOURCE, SEARCH_PARAMS

_RETURN = returned(RESOURCE, "the prescription as it is after the step (its new version)")
_STEP_NOTE = " A state that does not allow it is 409; If-Match with a stale version is 412."

# RX-7, RX-15, docs/architecture.md 6 (docs/pharmacy.md): what each lifecycle step does.
_LIFECYCLE: Final = {
    "$revoke": "the author withdraws an open or in-process prescription; status cancelled with "
    "the reason as statusReason.",
    "$take-in-process": "a pharmacy takes it in process; other pharmacies cannot dispense it "
    "until it is released.",
    "$release": "back to open: the pharmacy holding it, or the patient's own reservation.",
    "$reserve": "the patient reserves it at one pharmacy; in process at that pharmacy.",
    "$archive": "the pharmacy that delivered it archives it; no undo afterwards.",
    "$delete-by-patient": "the patient deletes an open prescription he does not want: status "
    "cancelled, statusReason deleted-by-patient of the system "
    "urn:ehealth-gateway:prescription-status-reason. Not once a pharmacy holds it (in process "
    "or reserved).",
}
# The parameters the lifecycle steps read (service.change_state), by name.
_STEP_PARAMETERS: Final = {
    "rid": (
        "string",
        "the RID the pharmacy holds (RX-17.1): BEP and 9 letters or digits, as a "
        "valueString or a valueIdentifier of the RID system",
    ),
    "pharmacy": (
        "Identifier",
        "the pharmacy's organisation NIHDI (ID-9), a valueIdentifier or "
        "its digits as a valueString",
    ),
}


def _step(name: str) -> OperationSpec:
    op = OPERATION_NAMES[name]
    params: list[OperationParam] = []
    for param in sorted(op.names):
        if param == "reason":
            params.append(reason_param("why", required=param in op.required))
        else:
            kind, text = _STEP_PARAMETERS.get(param, ("string", ""))
            params.append(
                OperationParam(param, "in", kind, text, min=1 if param in op.required else 0)
            )
    return OperationSpec(
        name.removeprefix("$"), _LIFECYCLE.get(name, "") + _STEP_NOTE, (*params, _RETURN)
    )


_SET_VISIBILITY = OperationSpec(
    "set-visibility",
    "who finds the prescription in searches by patient (RX-13, RX-14): the patient, or the author "
    "at the patient's request (not one pharmacy). A part left out keeps its value; the choice is "
    "shown as the extension urn:ehealth-gateway:extension:visibility. If-Match with a stale "
    "version is 412.",
    (
        OperationParam("pharmacies", "in", "code", "all | one | none"),
        OperationParam(
            "pharmacy",
            "in",
            "Identifier",
            "the organisation NIHDI of the one pharmacy, exactly when pharmacies is one",
        ),
        OperationParam(
            "prescribers",
            "in",
            "code",
            "open | closed | gmf (the author's and the patient's GMF holder's practices)",
        ),
        _RETURN,
    ),
)

DESCRIPTION: Final = TypeDescription(
    type=RESOURCE,
    documentation="Belgian prescriptions (Recip-e): the gateway assigns the RID; conditional "
    "create on the prescriber's own identifier (If-None-Exist).",
    profile=systems.PRESCRIPTION_PROFILE,
    search_names=SEARCH_PARAMS,
    search_params=(
        SearchParam(
            "identifier",
            "token",
            "system|value; a bare RID (BEP + 9) means the Recip-e RID system",
            FHIR_SEARCH_PARAMETER + "clinical-identifier",
        ),
        SearchParam.of(search.PATIENT_IDENTIFIER_PARAMETER),
        SearchParam(
            "status",
            "token",
            "comma-separated codes are OR-ed",
            FHIR_SEARCH_PARAMETER + "medications-status",
        ),
        SearchParam(
            "authoredon",
            "date",
            search.DATE_DOCUMENTATION,
            FHIR_SEARCH_PARAMETER + "MedicationRequest-authoredon",
        ),
        SearchParam(
            "reserved-at",
            "token",
            "the organisation NIHDI of the pharmacy a patient reserved the prescription at "
            "(RX-15), bare or system|value: a pharmacy lists the reservations made at it; for "
            "other callers it narrows their own search",
        ),
    ),
    operations=(_SET_VISIBILITY, SET_FEEDBACK, *(_step(name) for name in OPERATION_NAMES)),
    catch_all_operations=tuple(name.removeprefix("$") for name in OPERATION_NAMES),
)
