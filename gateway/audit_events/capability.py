"""What the AuditEvent routes cannot say about themselves, for the CapabilityStatement
(``gateway.capability``; docs/architecture.md 8)."""

from __future__ import annotations

from typing import Final

from gateway.audit.writer import RESOURCE_TYPE
from gateway.audit_events.routes import SEARCH_PARAMS
from gateway.fhir import search
from gateway.fhir.conformance import FHIR_SEARCH_PARAMETER, SearchParam, TypeDescription

DESCRIPTION: Final = TypeDescription(
    type=RESOURCE_TYPE,
    documentation="The append-only, hash-chained access log: every read, search, create, "
    "update and refusal on /fhir. A patient reads his own; operators read all. An event is "
    "written once and never changes: no versions.",
    search_names=SEARCH_PARAMS,
    search_params=(
        SearchParam(
            "patient",
            "reference",
            "the data subject: <SSIN>, <ssin-system>|<SSIN> or "
            "patient:identifier=<ssin-system>|<SSIN> (a patient may leave it out: his own)",
            FHIR_SEARCH_PARAMETER + "clinical-patient",
        ),
        SearchParam(
            "date",
            "date",
            "when recorded; " + search.DATE_DOCUMENTATION,
            FHIR_SEARCH_PARAMETER + "AuditEvent-date",
        ),
    ),
)
