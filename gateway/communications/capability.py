"""What the Communication routes cannot say about themselves, for the CapabilityStatement
(``gateway.capability``)."""

from __future__ import annotations

from typing import Final

from fhir_profiles.feedback import REASON_SYSTEM, REASONS
from gateway.communications.service import RESOURCE, SEARCH_PARAMS
from gateway.fhir import search
from gateway.fhir.conformance import FHIR_SEARCH_PARAMETER, SearchParam, TypeDescription

DESCRIPTION: Final = TypeDescription(
    type=RESOURCE,
    documentation="A pharmacy's feedback to the author of a prescription (RX-8): about = the "
    f"MedicationRequest (reference and/or RID), reasonCode one coding of {REASON_SYSTEM} ("
    + ", ".join(REASONS)
    + "), payload[0].contentString the message. The gateway sets sender (the calling "
    "pharmacy), recipient (the author), subject (the prescription's patient) and sent. The "
    "pharmacy reads what it sent, the author what he received; nobody else, patients "
    "included. While the author refuses feedback ($set-feedback) a create is 403 "
    "feedback-refused.",
    search_names=SEARCH_PARAMS,
    search_params=(
        SearchParam(
            "about",
            "reference",
            "MedicationRequest/{id}, the id, or this server's URL of it: the caller's own "
            "feedback on that prescription (a gateway parameter: R4 Communication has none "
            "on about)",
        ),
        SearchParam(
            "sent",
            "date",
            "when the gateway recorded it; " + search.DATE_DOCUMENTATION,
            FHIR_SEARCH_PARAMETER + "Communication-sent",
        ),
    ),
)
