"""``$set-feedback`` (domain RX-8, Recip-e updateFeedbackFlag): the body, and how the operation is
described to clients.

``Parameters`` with one ``allowed`` = ``valueBoolean``: ``false`` refuses pharmacists' feedback
on this prescription (a pharmacy's ``POST /fhir/Communication`` about it is then 403
``feedback-refused``), ``true`` accepts it again. The choice is shown on the prescription as the
extension ``fhir_profiles.feedback.FLAG_URL``; only the author sets it (``consent.decide``).
"""

from __future__ import annotations

from typing import Any, Final

from fhir_profiles.feedback import FLAG_URL
from gateway.errors import BadRequest
from gateway.fhir import parameters
from gateway.fhir.conformance import OperationParam, OperationSpec, returned
from gateway.prescriptions.searching import RESOURCE

SET_FEEDBACK: Final = "$set-feedback"
_ALLOWED: Final = "allowed"

OPERATION: Final = OperationSpec(
    SET_FEEDBACK.removeprefix("$"),
    "the author accepts (allowed true) or refuses (false) pharmacists' feedback on this "
    "prescription (RX-8); while refused, a pharmacy's Communication about it is 403 "
    f"feedback-refused. The choice is shown as the extension {FLAG_URL} (absent: accepted). "
    "If-Match with a stale version is 412.",
    (
        OperationParam(_ALLOWED, "in", "boolean", "true: feedback accepted; false: refused", min=1),
        returned(RESOURCE, "the prescription with the author's choice"),
    ),
)


def allowed_of(body: dict[str, Any]) -> bool:
    """The ``allowed`` parameter of a ``$set-feedback`` body (400 naming it when not a boolean)."""
    given = parameters.read(
        body, SET_FEEDBACK, frozenset({_ALLOWED}), required=frozenset({_ALLOWED})
    )
    value = given[_ALLOWED].get("valueBoolean")
    if not isinstance(value, bool):
        raise BadRequest(f"{_ALLOWED} needs a valueBoolean", expression=parameters.path(_ALLOWED))
    return value
