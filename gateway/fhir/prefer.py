"""``Prefer: return=...`` (FHIR R4 http.html#return, RFC 7240): what a write answers with.

``minimal``: no body; ``representation`` (the default): the resource; ``OperationOutcome``: an
informational OperationOutcome saying what was done. Status and headers (``Location``, ``ETag``,
``Last-Modified``) are the same in all three; ``Preference-Applied`` tells the client which was
honoured. ``handling`` (strict or lenient search parameters) is read by ``gateway.fhir.handling``.
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


def preference(request: Request, name: str) -> str | None:
    """The value of the first ``name`` preference the request states, or ``None``. Several
    ``Prefer`` headers or comma-separated preferences may be sent; the first counts (RFC 7240 2)."""
    for header in request.headers.getlist("prefer"):
        for stated in header.split(","):
            key, _, value = stated.split(";", 1)[0].partition("=")
            if key.strip().lower() == name:
                return value.strip().strip('"')
    return None


def return_preference(request: Request) -> ReturnPreference | None:
    """The ``return`` preference of the request, or ``None`` (none sent, or a value FHIR does not
    define: ignored, RFC 7240 2)."""
    value = preference(request, "return")
    return None if value is None else _RETURNS.get(value.lower())
