"""``Prefer: return=...`` (FHIR R4 http.html#return, RFC 7240): what a write answers with.

``minimal``: no body; ``representation`` (the default): the resource; ``OperationOutcome``: an
informational OperationOutcome saying what was done. Status and headers (``Location``, ``ETag``,
``Last-Modified``) are the same in all three; ``Preference-Applied`` tells the client which was
honoured. Other preferences (``handling``, ``respond-async``...) are not read here.
"""

from __future__ import annotations

from typing import Final, Literal

from fastapi import Request

ReturnPreference = Literal["minimal", "representation", "OperationOutcome"]
_RETURNS: Final[dict[str, ReturnPreference]] = {
    "minimal": "minimal",
    "representation": "representation",
    "operationoutcome": "OperationOutcome",
}
PREFERENCE_APPLIED: Final = "Preference-Applied"


def return_preference(request: Request) -> ReturnPreference | None:
    """The ``return`` preference of the request, or ``None`` (none sent, or a value FHIR does not
    define: ignored, RFC 7240 2). Several ``Prefer`` headers or comma-separated preferences may
    be sent; the first ``return`` counts (RFC 7240 2)."""
    for header in request.headers.getlist("prefer"):
        for preference in header.split(","):
            name, _, value = preference.split(";", 1)[0].partition("=")
            if name.strip().lower() == "return":
                return _RETURNS.get(value.strip().strip('"').lower())
    return None
