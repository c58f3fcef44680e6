"""The eAttest answer message (hl7-be BeEattestationResponse) the gateway sends back.

A ``Bundle`` of type ``message``: first the ``MessageHeader`` (event ``eattestresponse-create`` or
``-cancel``, or ``reject`` when the gateway refused the request, as the guide's ex17;
``response.identifier`` the request's MessageHeader id, ``response.code`` ``ok``,
``fatal-error`` or ``transient-error``; focus the ClaimResponse or the OperationOutcome), then the
fund (an Organization by insurancenumber), the provider's PractitionerRole and Practitioner and
the Patient as the stored Claim holds them, and the ClaimResponse exactly as the fund wrote it
and the gateway stored it, or an OperationOutcome whose issues carry the guide's error code
(be-cs-eattestation-errors) where there is one, the gateway's rule id, and the FHIRPath.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Literal

from fhir_profiles._json import items, obj, text
from fhir_profiles.eattest_message import GuideIssue, message_path
from fhir_profiles.issues import Issue
from fhir_profiles.rules.claim_codes import ERRORS, MESSAGE_EVENTS, RESPONSE_PROFILE
from gateway.fhir.outcomes import operation_outcome

ResponseCode = Literal["ok", "fatal-error", "transient-error"]
_UUID: Final = "urn:uuid:"


def outcome(issues: list[Issue]) -> dict[str, Any]:
    """The OperationOutcome of ``issues``; a guide error code goes first in ``details.coding``."""
    rendered = operation_outcome(issues)
    for issue, entry in zip(issues, rendered["issue"], strict=True):
        error = issue.error if isinstance(issue, GuideIssue) else ""
        if error:
            details = entry.setdefault("details", {"coding": []})
            details["coding"] = [{"system": ERRORS, "code": error}, *details["coding"]]
    return rendered


def _parties(claim: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The fund, and the provider's role, person and patient as the stored Claim names them."""
    if claim is None:
        return []
    entries = []
    insurer = obj((obj(claim.get("insurer")) or {}).get("identifier"))
    if insurer is not None:
        fund = {"resourceType": "Organization", "id": uuid.uuid4().hex, "identifier": [insurer]}
        entries.append(fund)
    wanted = {"PractitionerRole", "Practitioner", "Patient"}
    for resource in items(claim.get("contained")):
        resource = obj(resource) or {}
        if resource.get("resourceType") in wanted and text(resource.get("id")):
            entries.append(_outward(resource))
    return entries


def full_url(resource: Mapping[str, Any]) -> str:
    """``urn:uuid:`` of a resource whose id is a UUID (the gateway's are, without dashes)."""
    own = str(resource.get("id"))
    try:
        return _UUID + str(uuid.UUID(own))
    except ValueError:
        return f"{resource.get('resourceType')}/{own}"


def fund_outcome(
    claim_response: Mapping[str, Any], paths: tuple[tuple[str, str], ...] = ()
) -> dict[str, Any] | None:
    """AT-5: a fund's refusal (``outcome`` error) as the guide's OperationOutcome: one issue per
    ``error[]`` with the fund's code and the FHIRPath it gave (``code.text``, into the Claim),
    moved into the request message by ``paths`` (``fhir_profiles.eattest_message``)."""
    if claim_response.get("outcome") != "error":
        return None
    issues = []
    for error in items(claim_response.get("error")):
        concept = obj((obj(error) or {}).get("code")) or {}
        issue: dict[str, Any] = {"severity": "error", "code": "business-rule"}
        codings = [obj(c) for c in items(concept.get("coding")) if obj(c)]
        if codings:
            issue["details"] = {"coding": codings}
        where = text(concept.get("text"))
        if where:
            issue["expression"] = [message_path(where, paths)]
        issues.append(issue)
    if not issues:
        issues.append({"severity": "error", "code": "business-rule"})
    return {"resourceType": "OperationOutcome", "id": uuid.uuid4().hex, "issue": issues}


def _outward(value: Any) -> Any:
    """A contained resource as a message entry: its ``#id`` references read ``urn:uuid:id``."""
    if isinstance(value, dict):
        copy = {k: _outward(v) for k, v in value.items()}
        ref = copy.get("reference")
        if isinstance(ref, str) and ref.startswith("#"):
            copy["reference"] = _UUID + ref[1:]
        return copy
    if isinstance(value, list):
        return [_outward(v) for v in value]
    return value


def response_message(
    *,
    answers: str | None,
    event: str,
    code: ResponseCode,
    now: datetime,
    claim: Mapping[str, Any] | None = None,
    claim_response: Mapping[str, Any] | None = None,
    issues: list[Issue] | None = None,
    paths: tuple[tuple[str, str], ...] = (),
) -> dict[str, Any]:
    """The answer message; ``answers`` is the request's MessageHeader id (else its Bundle id)."""
    focus: dict[str, Any] | None = None
    resources = _parties(claim)
    if claim_response is not None:
        refused = fund_outcome(claim_response, paths)
        if refused is None and issues:  # the fund answered, and said no to part of it
            refused = {**outcome(issues), "id": uuid.uuid4().hex}
        if refused is not None:
            resources.append(dict(claim_response))
        focus = refused or dict(claim_response)
    elif issues:
        focus = {**outcome(issues), "id": uuid.uuid4().hex}
    header: dict[str, Any] = {
        "resourceType": "MessageHeader",
        "id": uuid.uuid4().hex,
        "eventCoding": {"system": MESSAGE_EVENTS, "code": event},
        "source": {"name": "ehealth-gateway", "endpoint": "urn:ehealth-gateway"},
        "response": {"identifier": answers or "unknown", "code": code},
    }
    if focus is not None:
        header["focus"] = [{"reference": full_url(focus)}]
        resources.append(focus)
    return {
        "resourceType": "Bundle",
        "id": uuid.uuid4().hex,
        "meta": {"profile": [RESPONSE_PROFILE]},
        "type": "message",
        "timestamp": now.isoformat(timespec="seconds"),
        "entry": [{"fullUrl": full_url(r), "resource": r} for r in [header, *resources]],
    }
