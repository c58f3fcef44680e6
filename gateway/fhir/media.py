"""The FHIR JSON media type (FHIR R4 http.html#mime-type), named once for every request and answer."""

from __future__ import annotations

from typing import Final

FHIR_JSON: Final = "application/fhir+json"
# The Content-Type of every FHIR JSON answer: FHIR bodies are UTF-8 and the answer says so
# (FHIR R4 http.html#mime-type, "charset").
FHIR_JSON_UTF8: Final = f"{FHIR_JSON}; charset=utf-8"
# DSTU2's spelling, still sent by older clients (FHIR R4 http.html#mime-type): read as FHIR JSON.
LEGACY_FHIR_JSON: Final = "application/json+fhir"
# Every spelling of XML a client may send or ask for (FHIR R4 http.html#mime-type, DSTU2's
# ``application/xml+fhir``, the ``_format`` shorthand): refused with a message saying so.
XML_TYPES: Final = frozenset(
    {"application/fhir+xml", "application/xml+fhir", "application/xml", "text/xml", "xml"}
)
