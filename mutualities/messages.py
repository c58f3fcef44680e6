"""eAttest as FHIR messages: the request Bundle a fund reads, the response Bundle it answers.

hl7-be/eattestation ``BeEattestationRequest``: a Bundle of type ``message`` whose id is the request
key (AT-7), with a ``MessageHeader`` (event ``eattest-create`` or ``eattest-cancel``, its focus the
Claim), the ``Patient``, the provider's ``PractitionerRole`` and ``Practitioner``, an
``Organization`` and the ``Claim``, whose ``patient``, ``provider`` and ``insurer`` point at those
entries. :func:`read_request` resolves those references into the identifiers the fund's claim
reader (``claims.parse_claim``) takes, so one reader serves the message and the plain Claim.

``BeEattestationResponse``: :func:`response_bundle` wraps a ClaimResponse the fund stored in the
message around it (the fund, the provider, the patient by SSIN, and on a refusal an
``OperationOutcome`` with the FHIRPath of each fault in the request Bundle). The wrapping is a
function of the stored bytes and the request's MessageHeader id, so a replay answers the same bytes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from mutualities import responses, systems
from mutualities.errors import ErrorCode, Fault, ProtocolError

CREATE: Final = "eattest-create"
CANCEL: Final = "eattest-cancel"
_RESPONSE_EVENT: Final = {
    responses.FundEvent.ACKNOWLEDGED: (systems.MESSAGE_EVENTS, "eattestresponse-create"),
    responses.FundEvent.CANCELLED: (systems.MESSAGE_EVENTS, "eattestresponse-cancel"),
    responses.FundEvent.REJECTED: (systems.MESSAGE_EVENTS, "reject"),
    # [A] The guide has no settlement message; the feed's events say so in the fund's own system.
    responses.FundEvent.SETTLED: (systems.MUTUALITY_EVENT, "settled"),
}
# OperationOutcome.issue.code (FHIR R4 issue-type) per fault.
_ISSUE_TYPE: Final[dict[str, str]] = {
    ErrorCode.INVALID_CLAIM: "structure",
    ErrorCode.WRONG_INSURER: "business-rule",
    ErrorCode.NOT_A_MEMBER: "not-found",
    ErrorCode.UNKNOWN_NOMENCLATURE_CODE: "code-invalid",
    ErrorCode.FUTURE_DATE: "business-rule",
    ErrorCode.DUPLICATE_ATTESTATION: "duplicate",
    ErrorCode.UNKNOWN_ATTESTATION: "not-found",
    ErrorCode.INVALID_CANCEL_REASON: "code-invalid",
    ErrorCode.MISSING_PRACTITIONERROLE_PRACTITIONER_REFERENCE: "structure",
}


class MessageRefused(Exception):
    """Not a request the fund can read as a message: answered 400 with an OperationOutcome."""

    def __init__(self, error: ProtocolError, issue_code: str, diagnostics: str) -> None:
        super().__init__(error.value)
        self.error = error
        self.issue_code = issue_code
        self.diagnostics = diagnostics


@dataclass(frozen=True)
class RequestMessage:
    key: str  # Bundle.id: the request key (AT-7)
    header_id: str | None  # MessageHeader.id, which the answer's ``response.identifier`` names
    event: str  # CREATE or CANCEL
    claim: dict[str, Any]  # the Claim, its parties given by identifier
    claim_entry: int  # its position in Bundle.entry, for the FHIRPath of a fault
    faults: list[Fault] = field(default_factory=list)  # found while resolving the parties


def read_request(body: object, fund: str) -> RequestMessage:
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise MessageRefused(ProtocolError.NOT_A_MESSAGE, "structure", "The body must be a Bundle")
    if body.get("type") != "message":
        raise MessageRefused(
            ProtocolError.NOT_A_MESSAGE, "structure", "The Bundle must be of type message"
        )
    key = body.get("id")
    if not isinstance(key, str) or not key:
        raise MessageRefused(
            ProtocolError.MISSING_BUNDLE_ID, "required", "The Bundle id is the request key"
        )
    entries: list[dict[str, Any]] = [_dict(e) for e in _list(body.get("entry"))]
    resources = [_dict(e.get("resource")) for e in entries]
    header = resources[0] if resources else {}
    if header.get("resourceType") != "MessageHeader":
        raise MessageRefused(
            ProtocolError.NOT_A_MESSAGE, "structure", "The first entry must be a MessageHeader"
        )
    coding = _dict(header.get("eventCoding"))
    event = coding.get("code")
    if event not in (CREATE, CANCEL) or coding.get("system") != systems.MESSAGE_EVENTS:
        raise MessageRefused(
            ProtocolError.NOT_A_MESSAGE,
            "not-supported",
            "The event must be eattest-create or -cancel",
        )
    by_url = {
        e["fullUrl"]: r
        for e, r in zip(entries, resources, strict=True)
        if isinstance(e.get("fullUrl"), str)
    }
    claims = [i for i, r in enumerate(resources) if r.get("resourceType") == "Claim"]
    if len(claims) != 1:
        raise MessageRefused(
            ProtocolError.NOT_A_MESSAGE, "structure", "The message must carry one Claim"
        )
    header_id = header.get("id")
    resolver = _Parties(by_url, resources)
    claim = resolver.claim(resources[claims[0]], fund)
    return RequestMessage(
        key=key,
        header_id=header_id if isinstance(header_id, str) else None,
        event=str(event),
        claim=claim,
        claim_entry=claims[0],
        faults=resolver.faults,
    )


class _Parties:
    """Puts the identifiers of the entries the Claim points at into the Claim itself."""

    def __init__(self, by_url: dict[str, dict[str, Any]], resources: list[dict[str, Any]]) -> None:
        self.by_url = by_url
        self.resources = resources
        self.faults: list[Fault] = []

    def claim(self, claim: dict[str, Any], fund: str) -> dict[str, Any]:
        resolved = dict(claim)
        patient = self._identifier(claim.get("patient"), "Patient", _patient_identifier)
        if patient is not None:
            resolved["patient"] = {"identifier": patient}
        provider = self._provider(claim.get("provider"))
        if provider is not None:
            resolved["provider"] = {"identifier": provider}
        insurer = self._identifier(claim.get("insurer"), "Organization", _insurer_identifier)
        if insurer is None and not isinstance(claim.get("insurer"), dict):
            # The guide's Claim names no insurer: it is the fund that gave the membership number,
            # else the fund the message was sent to.
            assigner = _assigner(patient) or fund
            insurer = {"system": systems.INSURER, "value": assigner}
        if insurer is not None:
            resolved["insurer"] = {"identifier": insurer}
        return resolved

    def _target(self, reference: object) -> dict[str, Any] | None:
        if not isinstance(reference, dict) or isinstance(reference.get("identifier"), dict):
            return None  # given by identifier already (or absent): the claim reader decides
        return self._entry(reference.get("reference"))

    def _entry(self, url: object) -> dict[str, Any] | None:
        return self.by_url.get(url) if isinstance(url, str) else None

    def _identifier(
        self, reference: object, resource_type: str, pick: Any
    ) -> dict[str, Any] | None:
        target = self._target(reference)
        if target is None or target.get("resourceType") != resource_type:
            return None
        found: dict[str, Any] | None = pick(_list(target.get("identifier")))
        return found

    def _provider(self, reference: object) -> dict[str, Any] | None:
        target = self._target(reference)
        if target is None:
            return None
        if target.get("resourceType") == "PractitionerRole":
            practitioner = target.get("practitioner")
            if not isinstance(practitioner, dict) or not (
                practitioner.get("reference") or practitioner.get("identifier")
            ):
                index = self.resources.index(target)
                path = f"Bundle.entry[{index}].resource.ofType(PractitionerRole).practitioner"
                self.faults.append(
                    Fault(ErrorCode.MISSING_PRACTITIONERROLE_PRACTITIONER_REFERENCE, path)
                )
                return None
            if isinstance(practitioner.get("identifier"), dict):
                return dict(practitioner["identifier"])
            target = self._entry(practitioner.get("reference")) or {}
        if target.get("resourceType") != "Practitioner":
            return None
        return _first(_list(target.get("identifier")), systems.NIHDI_ALIASES)


def _patient_identifier(identifiers: list[Any]) -> dict[str, Any] | None:
    return _first(identifiers, systems.SSIN_ALIASES) or _first(
        identifiers, frozenset({systems.MEMBERSHIP})
    )


def _insurer_identifier(identifiers: list[Any]) -> dict[str, Any] | None:
    return _first(identifiers, frozenset({systems.INSURER}))


def _first(identifiers: list[Any], accepted: frozenset[str]) -> dict[str, Any] | None:
    for identifier in identifiers:
        if isinstance(identifier, dict) and identifier.get("system") in accepted:
            return dict(identifier)
    return None


def _assigner(patient: dict[str, Any] | None) -> str | None:
    assigner = (patient or {}).get("assigner")
    identifier = assigner.get("identifier") if isinstance(assigner, dict) else None
    value = identifier.get("value") if isinstance(identifier, dict) else None
    return value if isinstance(value, str) else None


# -- the answer ----------------------------------------------------------------------------------


def response_bundle(
    stored: bytes, *, request_header: str | None = None, claim_entry: int | None = None
) -> bytes:
    """The BeEattestationResponse message around a stored ClaimResponse (embedded byte for byte).

    ``request_header``: the MessageHeader id of the request answered (absent for a feed event);
    ``claim_entry``: the Claim's position in that request, to give each fault's FHIRPath in it.
    """
    answer = orjson.loads(stored)
    answer_id = str(answer.get("id"))
    event = _event(answer)

    def url(part: str) -> str:
        return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{answer_id}/{request_header}/{part}')}"

    answer_url = url("claimresponse")
    entries: list[dict[str, Any]] = []
    insurer = answer.get("insurer") or {}
    provider = answer.get("requestor") or {}
    patient = answer.get("patient") or {}
    header: dict[str, Any] = {
        "resourceType": "MessageHeader",
        "id": url("header").removeprefix("urn:uuid:"),
        "eventCoding": dict(zip(("system", "code"), _RESPONSE_EVENT[event], strict=True)),
        "source": {"endpoint": f"urn:ehealth-gateway:fund:{_value(insurer)}"},
    }
    if "reference" in provider:
        receiver = {"reference": provider["reference"]}
        header["destination"] = [{"endpoint": "urn:ehealth-gateway", "receiver": receiver}]
    if "reference" in insurer:
        header["sender"] = {"reference": insurer["reference"]}
    if request_header is not None:
        header["response"] = {"identifier": request_header, "code": "ok"}
    entries.append({"fullUrl": url("header"), "resource": header})
    if "reference" in insurer:
        entries.append(
            _entry(insurer, {"resourceType": "Organization", "identifier": [insurer["identifier"]]})
        )
    if "reference" in provider:
        practitioner = url("practitioner")
        entries.append(
            _entry(
                provider,
                {"resourceType": "PractitionerRole", "practitioner": {"reference": practitioner}},
            )
        )
        entries.append(
            {
                "fullUrl": practitioner,
                "resource": {
                    "resourceType": "Practitioner",
                    "identifier": [{"system": systems.NIHDI, "value": _value(provider)}],
                },
            }
        )
    if "reference" in patient:
        entries.append(
            _entry(patient, {"resourceType": "Patient", "identifier": [patient["identifier"]]})
        )
    entries.append({"fullUrl": answer_url, "resource": orjson.Fragment(stored)})
    focus = answer_url
    if event == responses.FundEvent.REJECTED:
        focus = url("outcome")
        outcome = _outcome(answer, claim_entry)
        entries.append({"fullUrl": focus, "resource": outcome})
    header["focus"] = [{"reference": focus}]
    bundle_id = answer_id if request_header is None else url("bundle").removeprefix("urn:uuid:")
    return responses.encode(
        {
            "resourceType": "Bundle",
            "id": bundle_id,
            "type": "message",
            "timestamp": answer.get("created"),
            "entry": entries,
        }
    )


def _entry(reference: dict[str, Any], resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": reference["reference"], "resource": resource}


def _value(reference: dict[str, Any]) -> str:
    identifier = reference.get("identifier")
    value = identifier.get("value") if isinstance(identifier, dict) else None
    return value if isinstance(value, str) else ""


def _event(answer: dict[str, Any]) -> str:
    for tag in (answer.get("meta") or {}).get("tag", []):
        if tag.get("system") == systems.MUTUALITY_EVENT and tag.get("code") in _RESPONSE_EVENT:
            return str(tag["code"])
    return responses.FundEvent.REJECTED


def _outcome(answer: dict[str, Any], claim_entry: int | None) -> dict[str, Any]:
    """One issue per fault: the fund's code (and the guide's where it publishes one), the
    FHIRPath in the request Bundle first, then in the Claim as the ClaimResponse gives it."""
    issues = []
    for error in _list(answer.get("error")):
        codings = error["code"]["coding"]
        path = str(error["code"]["text"])
        expressions = [path]
        if claim_entry is not None and path.startswith("Claim"):
            expressions.insert(
                0, f"Bundle.entry[{claim_entry}].resource.ofType(Claim){path[len('Claim') :]}"
            )
        code = codings[0]["code"]
        issue_type = _ISSUE_TYPE.get(code, "processing")  # StrEnum keys match the plain code
        issues.append(
            {
                "severity": "error",
                "code": issue_type,
                "details": {"coding": codings},
                "expression": expressions,
            }
        )
    return {"resourceType": "OperationOutcome", "issue": issues}


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
