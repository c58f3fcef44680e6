"""What the AuditEvent routes implement, for the CapabilityStatement (docs/architecture.md 8)."""

from __future__ import annotations

from typing import Any

from gateway.fhir import search

_FHIR_SP = "http://hl7.org/fhir/SearchParameter/"


def capability_entry() -> dict[str, Any]:
    return {
        "type": "AuditEvent",
        "documentation": "The append-only, hash-chained access log: every read, search, create, "
        "update and refusal on /fhir. A patient reads his own; operators read all.",
        "interaction": [{"code": "read"}, {"code": "search-type"}],
        "versioning": "no-version",
        "readHistory": False,
        "updateCreate": False,
        "searchParam": [
            {
                "name": "patient",
                "definition": _FHIR_SP + "clinical-patient",
                "type": "reference",
                "documentation": "the data subject: <SSIN>, <ssin-system>|<SSIN> or "
                "patient:identifier=<ssin-system>|<SSIN> (a patient may leave it out: his own)",
            },
            {
                "name": "date",
                "definition": _FHIR_SP + "AuditEvent-date",
                "type": "date",
                "documentation": "when recorded; " + search.DATE_DOCUMENTATION,
            },
            {
                "name": "_count",
                "type": "number",
                "documentation": "page size (default 20, at most 200), newest first; follow the "
                "Bundle's next link",
            },
        ],
    }
