"""eAttest request messages (hl7-be BeEattestationRequest) read into the gateway's one Claim shape.

A care provider's software sends a FHIR message (R4 messaging.html): a ``Bundle`` of type
``message`` whose first entry is the ``MessageHeader`` (event ``eattest-create`` or
``eattest-cancel``, focus the Claim), with the Patient, the PractitionerRoles and Practitioners,
the collector's Organization and optional ServiceRequests and Locations as entries the Claim
references (``urn:uuid:``). ``read_message`` checks the message itself and maps a create onto the
Claim that ``POST /fhir/Claim`` takes, so one set of claim rules (``fhir_profiles.claim``) serves
both paths:

- ``patient``, ``provider``, ``enterer`` and ``insurer`` name their party by identifier (the
  Patient's SSIN or membership number, the Practitioner's NIHDI number, the fund's code) as well
  as by reference;
- every other entry goes into ``Claim.contained`` under its uuid, and the message's references
  become ``#uuid``, so nothing the provider sent is lost and the stored Claim stands alone.

``message_path`` turns a FHIRPath into that Claim back into one into the message, so a violation
points where the provider wrote it. ``claim_to_message`` is the reverse, for a forwarder that
sends a stored Claim on as a message. Pure: no I/O, never raises on bad input.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from fhir_profiles import systems
from fhir_profiles._json import canonical_system, items, obj, text
from fhir_profiles.issues import Issue
from fhir_profiles.rules.claim_codes import (
    ATTESTATION,
    CANCEL_REASON,
    CANCEL_REASONS,
    EVENT_CANCEL,
    EVENT_CREATE,
    MESSAGE_EVENTS,
    MISSING_BUNDLE_ID,
    MISSING_PRACTITIONER_REFERENCE,
)

_ID: Final = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_UUID_PREFIX: Final = "urn:uuid:"
_CBE_DIGITS: Final = 10
_NIHDI: Final = frozenset({systems.NIHDI, systems.NIHDI_PROFESSIONAL})


@dataclass(frozen=True)
class GuideIssue(Issue):
    """An issue the guide has an error code for (be-cs-eattestation-errors, AT-5)."""

    error: str = ""


@dataclass(frozen=True)
class CreateMessage:
    bundle_id: str  # AT-7: the request key
    header_id: str | None  # what the answer's MessageHeader.response.identifier names
    claim: dict[str, Any]  # the gateway's Claim shape (docs/claims.md)
    paths: tuple[tuple[str, str], ...]  # FHIRPath prefixes: in that Claim -> in the message


@dataclass(frozen=True)
class CancelMessage:
    bundle_id: str
    header_id: str | None
    attestation: str  # AT-6: the attestation number to cancel
    reason: str  # A..G
    provider_nihdi: str


@dataclass(frozen=True)
class _Entry:
    index: int
    full_url: str
    resource: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.resource.get("resourceType"))

    @property
    def path(self) -> str:
        return f"Bundle.entry[{self.index}].resource.ofType({self.type})"

    @property
    def local_id(self) -> str:
        """The id the resource gets inside the Claim: the uuid of its fullUrl, else its own."""
        if self.full_url.startswith(_UUID_PREFIX):
            return self.full_url[len(_UUID_PREFIX) :]
        own = text(self.resource.get("id"))
        return own if own and _ID.match(own) else f"entry{self.index}"


class _Bundle:
    """The entries of a message, found by the references that name them."""

    def __init__(self, entries: list[_Entry]) -> None:
        self.entries = entries
        self._by_ref: dict[str, _Entry] = {}
        for entry in entries:
            self._by_ref.setdefault(entry.full_url, entry)
            own = text(entry.resource.get("id"))
            if own:
                self._by_ref.setdefault(f"{entry.type}/{own}", entry)

    def resolve(self, reference: Any) -> _Entry | None:
        ref = text((obj(reference) or {}).get("reference"))
        return None if ref is None else self._by_ref.get(ref)

    def of_type(self, resource_type: str) -> list[_Entry]:
        return [e for e in self.entries if e.type == resource_type]


def read_message(body: Any) -> CreateMessage | CancelMessage | list[Issue]:
    """The request message, checked (BeEattestationRequest) and mapped; or every issue found."""
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        return [Issue("structure", "Bundle", "the body must be a Bundle of type message")]
    issues: list[Issue] = []
    if body.get("type") != "message":
        issues.append(Issue("value", "Bundle.type", "the Bundle must be of type message", "AT-5"))
    bundle_id = text(body.get("id"))
    if bundle_id is None or not _ID.match(bundle_id):
        message = "the Bundle needs an id (1 to 64 letters, digits, '-' or '.'): the request key"
        issues.append(GuideIssue("required", "Bundle.id", message, "AT-7", error=MISSING_BUNDLE_ID))
    if text(body.get("timestamp")) is None:
        issues.append(Issue("required", "Bundle.timestamp", "the message needs its timestamp"))
    bundle, found = _entries(body)
    issues.extend(found)
    if issues:
        return issues
    assert bundle_id is not None
    header, event, found = _header(bundle)
    if found:
        return found
    assert header is not None
    claim_entry, found = _focus(bundle, header)
    if found or claim_entry is None:
        return found
    header_id = text(header.resource.get("id"))
    if event == EVENT_CANCEL:
        return _cancel(bundle, claim_entry, bundle_id, header_id)
    return _create(bundle, claim_entry, bundle_id, header_id)


def _entries(body: Mapping[str, Any]) -> tuple[_Bundle, list[Issue]]:
    entries, issues = [], []
    for i, raw in enumerate(items(body.get("entry"))):
        entry = obj(raw) or {}
        resource = obj(entry.get("resource"))
        full_url = text(entry.get("fullUrl"))
        if resource is None or not isinstance(resource.get("resourceType"), str):
            message = "every entry of the message carries a resource"
            issues.append(Issue("required", f"Bundle.entry[{i}].resource", message, "AT-5"))
            continue
        if not full_url:
            message = "every entry of the message has a fullUrl (urn:uuid:...)"
            issues.append(Issue("required", f"Bundle.entry[{i}].fullUrl", message, "AT-5"))
            continue
        entries.append(_Entry(i, full_url, resource))
    if not issues and len(entries) < 2:
        message = "the message has a MessageHeader, a Patient, the care providers and a Claim"
        issues.append(Issue("required", "Bundle.entry", message, "AT-5"))
    return _Bundle(entries), issues


def _header(bundle: _Bundle) -> tuple[_Entry | None, str | None, list[Issue]]:
    """FHIR messaging: the MessageHeader is the first entry; the event says create or cancel."""
    headers = bundle.of_type("MessageHeader")
    first = bundle.entries[0]
    if len(headers) != 1 or first.type != "MessageHeader":
        message = "the first entry, and only it, is the MessageHeader"
        return None, None, [Issue("structure", "Bundle.entry[0]", message, "AT-5")]
    coding = obj(first.resource.get("eventCoding")) or {}
    event = text(coding.get("code"))
    if coding.get("system") != MESSAGE_EVENTS or event not in (EVENT_CREATE, EVENT_CANCEL):
        message = f"the event is {EVENT_CREATE} or {EVENT_CANCEL} (MyCareNet message events)"
        path = f"{first.path}.eventCoding"
        return None, None, [Issue("code-invalid", path, message, "AT-5")]
    return first, event, []


def _focus(bundle: _Bundle, header: _Entry) -> tuple[_Entry | None, list[Issue]]:
    claims = bundle.of_type("Claim")
    focus = [bundle.resolve(f) for f in items(header.resource.get("focus"))]
    if len(claims) != 1 or focus != claims:
        message = "the message carries one Claim, the MessageHeader's focus"
        return None, [Issue("required", f"{header.path}.focus", message, "AT-5")]
    return claims[0], []


def _nihdi_of(
    bundle: _Bundle, role_ref: Any, path: str
) -> tuple[_Entry | None, dict[str, Any] | None, list[Issue]]:
    """The PractitionerRole a reference names and its Practitioner's NIHDI identifier."""
    role = bundle.resolve(role_ref)
    if role is None or role.type != "PractitionerRole":
        message = "this reference must name a PractitionerRole entry of the message"
        return None, None, [Issue("required", path, message, "AT-3")]
    practitioner = bundle.resolve(role.resource.get("practitioner"))
    if practitioner is None or practitioner.type != "Practitioner":
        message = "the PractitionerRole must reference a Practitioner entry of the message"
        issue = GuideIssue(
            "structure",
            f"{role.path}.practitioner",
            message,
            "AT-5",
            error=MISSING_PRACTITIONER_REFERENCE,
        )
        return role, None, [issue]
    for identifier in items(practitioner.resource.get("identifier")):
        identifier = obj(identifier) or {}
        if canonical_system(identifier) in _NIHDI:
            return role, identifier, []
    message = "the Practitioner needs his NIHDI number (system nihdi)"
    return role, None, [Issue("required", f"{practitioner.path}.identifier", message, "AT-3")]


def _identifier_path(bundle: _Bundle, role: _Entry) -> str:
    practitioner = bundle.resolve(role.resource.get("practitioner"))
    assert practitioner is not None
    for j, identifier in enumerate(items(practitioner.resource.get("identifier"))):
        if canonical_system(obj(identifier) or {}) in _NIHDI:
            return f"{practitioner.path}.identifier[{j}]"
    return f"{practitioner.path}.identifier"


def _patient(
    bundle: _Bundle, claim: _Entry
) -> tuple[_Entry | None, dict[str, Any] | None, str, list[Issue]]:
    """The Patient entry and the identifier that names him: his SSIN, else his membership
    number at his fund (ID-14)."""
    path = f"{claim.path}.patient"
    patient = bundle.resolve(claim.resource.get("patient"))
    if patient is None or patient.type != "Patient" or len(bundle.of_type("Patient")) != 1:
        message = "the Claim's patient must be the Patient entry of the message (one)"
        return None, None, path, [Issue("required", path, message, "AT-3")]
    ranked = sorted(
        enumerate(items(patient.resource.get("identifier"))),
        key=lambda pair: canonical_system(obj(pair[1]) or {}) != systems.SSIN,
    )
    for j, identifier in ranked:
        identifier = obj(identifier) or {}
        if canonical_system(identifier) in (systems.SSIN, systems.INSURANCE_MEMBERSHIP):
            return patient, identifier, f"{patient.path}.identifier[{j}]", []
    message = "the Patient is named by his SSIN or by his membership number at his fund"
    return None, None, path, [Issue("required", f"{patient.path}.identifier", message, "AT-3")]


def _collector(role: _Entry) -> list[Issue]:
    """AT-3: the collector (who receives the fee) by its CBE number, on the provider's role."""
    organisation = obj(role.resource.get("organization")) or {}
    identifier = obj(organisation.get("identifier")) or {}
    digits = "".join(c for c in text(identifier.get("value")) or "" if c != ".")
    well_formed = len(digits) == _CBE_DIGITS and digits.isascii() and digits.isdigit()
    if canonical_system(identifier) == systems.CBE and well_formed:
        return []
    message = "the provider's role names the collector by its CBE number (10 digits)"
    return [Issue("required", f"{role.path}.organization.identifier", message, "AT-3")]


def _create(
    bundle: _Bundle, claim_entry: _Entry, bundle_id: str, header_id: str | None
) -> CreateMessage | list[Issue]:
    source = claim_entry.resource
    issues: list[Issue] = []
    patient, patient_identifier, patient_path, found = _patient(bundle, claim_entry)
    issues.extend(found)
    provider, provider_identifier, found = _nihdi_of(
        bundle, source.get("provider"), f"{claim_entry.path}.provider"
    )
    issues.extend(found)
    enterer, enterer_identifier, found = _nihdi_of(
        bundle, source.get("enterer"), f"{claim_entry.path}.enterer"
    )
    issues.extend(found)
    if provider is not None and provider_identifier is not None:
        issues.extend(_collector(provider))
    insurer, insurer_path, found = _insurer(bundle, claim_entry, patient_identifier)
    issues.extend(found)
    if not items(source.get("careTeam")):
        message = "a create names its care team (at least the provider, role primary)"
        issues.append(Issue("required", f"{claim_entry.path}.careTeam", message, "AT-3"))
    for i, raw in enumerate(items(source.get("item"))):
        if not items((obj(raw) or {}).get("careTeamSequence")):
            message = "each service names who of the care team gave it (careTeamSequence)"
            where = f"{claim_entry.path}.item[{i}].careTeamSequence"
            issues.append(Issue("required", where, message, "AT-3"))
    if issues:
        return issues
    assert patient is not None
    assert patient_identifier is not None
    assert provider is not None
    assert provider_identifier is not None
    assert enterer is not None
    assert enterer_identifier is not None

    others = [e for e in bundle.entries if e.type not in ("MessageHeader", "Claim")]
    local = {e.full_url: f"#{e.local_id}" for e in others}
    for e in others:
        own = text(e.resource.get("id"))
        if own:
            local.setdefault(f"{e.type}/{own}", f"#{e.local_id}")
    claim = _rewrite(source, local)
    claim["contained"] = [{**_rewrite(e.resource, local), "id": e.local_id} for e in others]
    claim.pop("id", None)
    claim.pop("meta", None)
    claim["patient"] = {"reference": f"#{patient.local_id}", "identifier": patient_identifier}
    claim["provider"] = {"reference": f"#{provider.local_id}", "identifier": provider_identifier}
    claim["enterer"] = {"reference": f"#{enterer.local_id}", "identifier": enterer_identifier}
    if insurer is not None:
        claim["insurer"] = insurer
    paths = [
        ("Claim.patient.identifier", patient_path),
        ("Claim.provider.identifier", _identifier_path(bundle, provider)),
        ("Claim.enterer.identifier", _identifier_path(bundle, enterer)),
    ]
    if insurer_path is not None:
        paths.append(("Claim.insurer.identifier", insurer_path))
    paths += [(f"Claim.contained[{n}]", e.path) for n, e in enumerate(others)]
    paths.append(("Claim", claim_entry.path))
    return CreateMessage(bundle_id, header_id, claim, tuple(paths))


def _insurer(
    bundle: _Bundle, claim: _Entry, patient: Mapping[str, Any] | None
) -> tuple[dict[str, Any] | None, str | None, list[Issue]]:
    """ID-13, ID-14: the patient's fund. ``Claim.insurer`` by identifier, or by reference to an
    Organization entry with its insurancenumber; else the fund that assigned the membership
    number (the gateway fills it in); a patient named by SSIN needs it said."""
    reference = obj(claim.resource.get("insurer"))
    if reference is not None and obj(reference.get("identifier")) is not None:
        return dict(reference), None, []
    if reference is not None:
        organisation = bundle.resolve(reference)
        if organisation is not None and organisation.type == "Organization":
            for j, identifier in enumerate(items(organisation.resource.get("identifier"))):
                identifier = obj(identifier) or {}
                if canonical_system(identifier) == systems.INSURER:
                    named = {"reference": reference.get("reference"), "identifier": identifier}
                    return named, f"{organisation.path}.identifier[{j}]", []
        message = "the insurer must be an Organization of the message with its insurancenumber"
        return None, None, [Issue("required", f"{claim.path}.insurer", message, "ID-14")]
    if patient is not None and canonical_system(patient) == systems.INSURANCE_MEMBERSHIP:
        return None, None, []
    message = "name the patient's fund: Claim.insurer (insurancenumber) or his membership number"
    return None, None, [Issue("required", f"{claim.path}.insurer", message, "ID-14")]


def _cancel(
    bundle: _Bundle, claim_entry: _Entry, bundle_id: str, header_id: str | None
) -> CancelMessage | list[Issue]:
    """AT-6: the attestation number in ``Claim.identifier``, one reason A..G in supportingInfo,
    and nothing of a create (be-inv-eattestation-create-cancel)."""
    source = claim_entry.resource
    path = claim_entry.path
    issues: list[Issue] = []
    numbers = [
        text((obj(i) or {}).get("value"))
        for i in items(source.get("identifier"))
        if canonical_system(obj(i) or {}) == ATTESTATION
    ]
    if len(numbers) != 1 or not numbers[0]:
        message = "a cancellation names the attestation number it cancels (Claim.identifier)"
        issues.append(Issue("required", f"{path}.identifier", message, "AT-6"))
    reasons = []
    for i, raw in enumerate(items(source.get("supportingInfo"))):
        for coding in items((obj((obj(raw) or {}).get("code")) or {}).get("coding")):
            coding = obj(coding) or {}
            if coding.get("system") == CANCEL_REASON:
                reasons.append((i, text(coding.get("code"))))
    if len(reasons) != 1:
        message = "a cancellation gives one reason, A..G (supportingInfo, cancel reason system)"
        issues.append(Issue("required", f"{path}.supportingInfo", message, "AT-6"))
    elif reasons[0][1] not in CANCEL_REASONS:
        message = "the cancel reason is one of A, B, C, D, E, F, G"
        where = f"{path}.supportingInfo[{reasons[0][0]}].code"
        issues.append(Issue("code-invalid", where, message, "AT-6"))
    for element in ("item", "total", "careTeam"):
        if source.get(element):
            message = "a cancellation carries no items, total or care team"
            rule = "be-inv-eattestation-create-cancel"
            issues.append(Issue("invariant", f"{path}.{element}", message, rule))
    _, provider, found = _nihdi_of(bundle, source.get("provider"), f"{path}.provider")
    issues.extend(found)
    if issues:
        return issues
    number, reason = numbers[0], reasons[0][1]
    assert provider is not None
    assert number is not None
    assert reason is not None
    return CancelMessage(bundle_id, header_id, number, reason, text(provider.get("value")) or "")


def _rewrite(value: Any, local: Mapping[str, str]) -> Any:
    """A deep copy of ``value`` whose references to the message's entries read ``#id``."""
    if isinstance(value, dict):
        copy = {k: _rewrite(v, local) for k, v in value.items()}
        ref = copy.get("reference")
        if isinstance(ref, str) and ref in local:
            copy["reference"] = local[ref]
        return copy
    if isinstance(value, list):
        return [_rewrite(v, local) for v in value]
    return value


def message_path(expression: str, paths: tuple[tuple[str, str], ...]) -> str:
    """A FHIRPath into the mapped Claim as one into the message (the longest prefix wins)."""
    for inner, outer in paths:
        if expression == inner or expression.startswith((inner + ".", inner + "[")):
            return outer + expression[len(inner) :]
    return expression


# -- the reverse: a stored Claim sent on as a message ---------------------------------------------


def claim_to_message(
    claim: Mapping[str, Any], *, bundle_id: str, event: str, timestamp: str
) -> dict[str, Any]:
    """The request message of a stored Claim: its contained resources back as entries
    (``#id`` -> ``urn:uuid:id``), a MessageHeader with ``event`` and the Claim as its focus.
    A Claim posted without them (``POST /fhir/Claim``) gets a Patient, and a PractitionerRole and
    Practitioner for its provider, built from its identifiers. The ids it makes up derive from
    ``bundle_id``, so a retry sends the same message (only ``timestamp`` moves)."""
    body = {k: v for k, v in claim.items() if k not in ("contained", "meta", "text")}
    contained = [dict(r) for r in items(claim.get("contained")) if isinstance(r, dict)]
    local = {f"#{r.get('id')}": f"{_UUID_PREFIX}{r.get('id')}" for r in contained}
    body = _rewrite(body, local)
    entries = [
        {"fullUrl": f"{_UUID_PREFIX}{r.get('id')}", "resource": _rewrite(r, local)}
        for r in contained
    ]
    for element, build in (("patient", _built_patient), ("provider", _built_role)):
        reference = obj(body.get(element)) or {}
        if text(reference.get("reference")) is None:
            built = build(obj(reference.get("identifier")) or {}, bundle_id)
            entries.extend(built)
            body[element] = {**reference, "reference": built[0]["fullUrl"]}
    claim_url = f"{_UUID_PREFIX}{claim.get('id') or _made_up(bundle_id, 'claim')}"
    header_id = _made_up(bundle_id, "header")
    header = {
        "resourceType": "MessageHeader",
        "id": header_id,
        "eventCoding": {"system": MESSAGE_EVENTS, "code": event},
        "source": {"endpoint": "urn:ehealth-gateway"},
        "focus": [{"reference": claim_url}],
    }
    return {
        "resourceType": "Bundle",
        "id": bundle_id,
        "type": "message",
        "timestamp": timestamp,
        "entry": [
            {"fullUrl": f"{_UUID_PREFIX}{header_id}", "resource": header},
            *entries,
            {"fullUrl": claim_url, "resource": body},
        ],
    }


def _made_up(bundle_id: str, what: str) -> str:
    """A uuid of the message's own, the same for every attempt of ``bundle_id``."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:ehealth-gateway:message:{bundle_id}:{what}"))


def _built_patient(identifier: Mapping[str, Any], bundle_id: str) -> list[dict[str, Any]]:
    patient_id = _made_up(bundle_id, "patient")
    resource = {"resourceType": "Patient", "id": patient_id, "identifier": [dict(identifier)]}
    return [{"fullUrl": f"{_UUID_PREFIX}{patient_id}", "resource": resource}]


def _built_role(identifier: Mapping[str, Any], bundle_id: str) -> list[dict[str, Any]]:
    role_id, person_id = _made_up(bundle_id, "role"), _made_up(bundle_id, "practitioner")
    person = {"resourceType": "Practitioner", "id": person_id, "identifier": [dict(identifier)]}
    role = {
        "resourceType": "PractitionerRole",
        "id": role_id,
        "practitioner": {"reference": f"{_UUID_PREFIX}{person_id}"},
    }
    return [
        {"fullUrl": f"{_UUID_PREFIX}{role_id}", "resource": role},
        {"fullUrl": f"{_UUID_PREFIX}{person_id}", "resource": person},
    ]
