"""The FHIR JSON media type (FHIR R4 http.html#mime-type), named once for every request and answer."""

from __future__ import annotations

from typing import Final

FHIR_JSON: Final = "application/fhir+json"
