"""A pharmacist's feedback on a prescription (domain RX-8) as a FHIR R4 ``Communication``.

``validate_feedback`` checks what the pharmacy writes: FHIR R4 structure (fhir.resources), one
prescription in ``about`` (a reference, its RID as a logical reference, or both), one coded reason
in ``reasonCode`` from ``REASON_SYSTEM`` and the message in ``payload[0].contentString``. The
elements the gateway fills in itself (``sender``, ``recipient``, ``subject``, ``sent``) are not
checked here: whatever the body says is replaced (RX-8, ID-21: the patient comes from the
prescription, the sender from the caller's certificate). Rules that need the prescription (which
one it is, whether its author accepts feedback) are the gateway's.

The author's switch (RX-8 "updateFeedbackFlag") is shown on the prescription as the extension
``FLAG_URL`` with a ``valueBoolean``; absent means feedback is accepted, Recip-e's default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from fhir.resources.R4B.communication import Communication

from fhir_profiles import systems
from fhir_profiles._json import blank, canonical_system, items, obj, text
from fhir_profiles.identifiers import normalise_rid
from fhir_profiles.issues import Issue
from fhir_profiles.structure import structure_issues

RESOURCE: Final = "Communication"
# RX-8 [decided]: the gateway's code system for why a pharmacy writes; Recip-e's own feedback
# messages are free text, so the codes are ours.
REASON_SYSTEM: Final = "urn:ehealth-gateway:feedback-reason"
REASONS: Final[dict[str, str]] = {
    "product-unavailable": "Product unavailable",
    "patient-refused": "Patient refused",
    "dosage-question": "Question about the dosage",
    "other": "Other",
}
FLAG_URL: Final = "urn:ehealth-gateway:extension:feedback"
TEXT_MAX: Final = 2000  # a message, not a document
# Filled in by the gateway on every create, whatever the body holds (``received`` is the
# prescriber's software's business: dropped).
SERVER_OWNED: Final = ("sender", "recipient", "subject", "sent", "received")

_ABOUT: Final = "Communication.about"
_REASON: Final = "Communication.reasonCode"
_PAYLOAD: Final = "Communication.payload"
_REASON_TEXT: Final = ", ".join(REASONS)


@dataclass(frozen=True)
class ValidatedFeedback:
    resource: dict[str, Any]  # status completed, without the parts the gateway fills in
    reference: str | None  # about[0].reference as written (the gateway resolves its form)
    rid: str | None  # about[0].identifier: the RID the pharmacy holds (RX-17.1), upper case
    reason: str  # a code of REASONS
    message: str


def _about(body: Mapping[str, Any]) -> tuple[list[Issue], str | None, str | None]:
    """Exactly one prescription: by reference, by RID, or both (as a dispense names it)."""
    links = items(body.get("about"))
    if len(links) != 1:
        message = "name exactly one prescription (its reference or its RID)"
        return [Issue("required", _ABOUT, message, "RX-8")], None, None
    link = obj(links[0]) or {}
    reference = text(link.get("reference"))
    identifier = obj(link.get("identifier"))
    if reference is None and identifier is None:
        message = "give the prescription's reference or its RID identifier"
        return [Issue("required", f"{_ABOUT}[0]", message, "RX-8")], None, None
    rid = None
    if identifier is not None:
        value = text(identifier.get("value"))
        rid = normalise_rid(value) if value else None
        if canonical_system(identifier) != systems.RID or rid is None:
            message = "the identifier must be the prescription's RID (BEP followed by 9 characters)"
            return [Issue("value", f"{_ABOUT}[0].identifier", message, "RX-4")], None, None
    return [], reference, rid


def _reason(body: Mapping[str, Any]) -> tuple[list[Issue], str | None]:
    """One reason, coded in ``REASON_SYSTEM`` (other codings beside it are kept as given)."""
    concepts = items(body.get("reasonCode"))
    if len(concepts) != 1:
        message = f"give exactly one reason, a coding of {REASON_SYSTEM}"
        return [Issue("required", _REASON, message, "RX-8")], None
    codings = items((obj(concepts[0]) or {}).get("coding"))
    ours = [
        (index, coding)
        for index, coding in enumerate(codings)
        if isinstance(coding, dict) and canonical_system(coding) == REASON_SYSTEM
    ]
    if len(ours) != 1:
        message = f"the reason is one coding of {REASON_SYSTEM}: {_REASON_TEXT}"
        return [Issue("required", f"{_REASON}[0].coding", message, "RX-8")], None
    index, coding = ours[0]
    code = text(coding.get("code"))
    if code not in REASONS:
        message = f"unknown feedback reason; one of {_REASON_TEXT}"
        path = f"{_REASON}[0].coding[{index}].code"
        return [Issue("code-invalid", path, message, "RX-8")], None
    return [], code


def _message(body: Mapping[str, Any]) -> tuple[list[Issue], str | None]:
    """The message itself: one payload, as text."""
    payloads = items(body.get("payload"))
    path = f"{_PAYLOAD}[0].contentString"
    if len(payloads) != 1:
        return [Issue("required", path, "give the message as one payload", "RX-8")], None
    payload = obj(payloads[0]) or {}
    if "contentString" not in payload:
        message = "the message is text (contentString); attachments and references are not taken"
        return [Issue("not-supported", path, message, "RX-8")], None
    content = payload["contentString"]
    if blank(content):
        return [Issue("required", path, "the message is empty", "RX-8")], None
    if len(content) > TEXT_MAX:
        return [Issue("value", path, f"the message is at most {TEXT_MAX} characters", "RX-8")], None
    return [], str(content).strip()


def _status(body: Mapping[str, Any]) -> list[Issue]:
    """Feedback is recorded once sent: ``completed`` (or left out)."""
    if body.get("status") in (None, "completed"):
        return []
    return [Issue("value", "Communication.status", "feedback is created completed", "RX-8")]


def validate_feedback(body: dict[str, Any]) -> ValidatedFeedback | list[Issue]:
    """Check a feedback for create; every issue at once, never raises on bad input."""
    if not isinstance(body, dict) or body.get("resourceType") != RESOURCE:
        return [Issue("structure", RESOURCE, "the resource must be a Communication")]
    parsed = body if body.get("status") is not None else {**body, "status": "completed"}
    issues = structure_issues(Communication, RESOURCE, parsed)
    if issues:
        return issues
    about_issues, reference, rid = _about(body)
    reason_issues, reason = _reason(body)
    message_issues, message = _message(body)
    issues = [*_status(body), *about_issues, *reason_issues, *message_issues]
    if issues:
        return issues
    assert reason is not None
    assert message is not None
    resource = {k: v for k, v in body.items() if k not in SERVER_OWNED}
    resource["status"] = "completed"
    return ValidatedFeedback(resource, reference, rid, reason, message)


def accepts_feedback(prescription: Mapping[str, Any]) -> bool:
    """RX-8: whether the prescription's author accepts feedback (the ``FLAG_URL`` extension;
    absent: yes)."""
    for extension in items(prescription.get("extension")):
        if isinstance(extension, dict) and extension.get("url") == FLAG_URL:
            return extension.get("valueBoolean") is not False
    return True


def flag_extension(allowed: bool) -> dict[str, Any]:
    """The author's choice as shown on the prescription."""
    return {"url": FLAG_URL, "valueBoolean": allowed}
