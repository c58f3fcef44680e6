"""FHIR resources turned into the plain rows the templates show. Pure functions over JSON: a
missing or odd element shows as empty, never as an error."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fhir_profiles import systems

VISIBILITY_URL = "urn:ehealth-gateway:extension:visibility"
# The gateway state on a prescription (docs/pharmacy.md): it tells "in process at a pharmacy"
# (taken in process, or reserved) apart from "open", which share the FHIR status active.
LIFECYCLE_URL = "urn:ehealth-gateway:extension:lifecycle"
# The status reason of a prescription the patient deleted (RX-7; docs/pharmacy.md).
DELETED_BY_PATIENT = "deleted-by-patient"
CLAIM_STATE_TAG = "urn:ehealth-gateway:claim-state"
KIND_SYSTEM = "urn:ehealth-gateway:consent-kind"
RELATIONSHIP_KIND_SYSTEM = "urn:ehealth-gateway:relationship-kind"
RID_SYSTEMS = frozenset(
    {
        systems.RID,
        "http://ehealth.fgov.be/standards/fhir/medication/NamingSystem/be-ns-prescription",
    }
)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _concept_text(concept: Any) -> str:
    concept = _dict(concept)
    if isinstance(concept.get("text"), str):
        return str(concept["text"])
    for coding in _list(concept.get("coding")):
        coding = _dict(coding)
        if coding.get("display"):
            return str(coding["display"])
        if coding.get("code"):
            return str(coding["code"])
    return ""


def _identifier_value(reference: Any) -> str:
    value = _dict(_dict(reference).get("identifier")).get("value")
    return str(value) if isinstance(value, str) else ""


# -- prescriptions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prescription:
    id: str
    rid: str
    medication: str
    dosage: str
    status: str  # FHIR status, rendered generically (active, completed, cancelled, stopped, ...)
    status_reason: str
    state: str  # open | in-process | dispensed | revoked | expired | other: the label key
    authored_on: str
    valid_from: str
    valid_until: str
    prescriber_nihdi: str
    pharmacies: str  # RX-13: all | one | none
    pharmacy: str
    prescribers: str  # RX-14: open | closed | gmf
    holder: str = ""  # organisation NIHDI of the pharmacy holding it (in process, delivered)
    reserved: bool = False  # RX-15: held there because the patient reserved it


def rid_of(resource: dict[str, Any]) -> str:
    for identifier in _list(resource.get("identifier")):
        identifier = _dict(identifier)
        if identifier.get("system") in RID_SYSTEMS and isinstance(identifier.get("value"), str):
            return str(identifier["value"])
    return ""


def _lifecycle(resource: dict[str, Any]) -> tuple[str, str, bool]:
    """(state, pharmacy holding it, reserved) from the lifecycle extension (docs/pharmacy.md)."""
    state, pharmacy, reserved = "", "", False
    for extension in _list(resource.get("extension")):
        extension = _dict(extension)
        if extension.get("url") != LIFECYCLE_URL:
            continue
        for part in _list(extension.get("extension")):
            part = _dict(part)
            if part.get("url") == "state":
                state = str(part.get("valueCode") or "")
            elif part.get("url") == "pharmacy":
                pharmacy = str(_dict(part.get("valueIdentifier")).get("value") or "")
            elif part.get("url") == "reservation":
                reserved = part.get("valueBoolean") is True
    return state, pharmacy, reserved


def _state(status: str, reason: str, lifecycle: str = "") -> str:
    if status == "active":
        return "in-process" if lifecycle == "in-process" else "open"
    if status == "completed":
        return "dispensed"
    if status == "cancelled" and reason == DELETED_BY_PATIENT:
        return "deleted"
    if status == "cancelled":
        return "revoked"
    if status == "stopped" and reason == "expired":
        return "expired"
    if status == "stopped":
        return "stopped"
    return "other"


def _reason_code(resource: dict[str, Any]) -> str:
    reason = _dict(resource.get("statusReason"))
    for coding in _list(reason.get("coding")):
        code = _dict(coding).get("code")
        if isinstance(code, str):
            return code
    text = reason.get("text")
    return str(text) if isinstance(text, str) else ""


def visibility(resource: dict[str, Any]) -> tuple[str, str, str]:
    """(pharmacies, pharmacy, prescribers) from the visibility extension; defaults all/open."""
    pharmacies, pharmacy, prescribers = "all", "", "open"
    for extension in _list(resource.get("extension")):
        extension = _dict(extension)
        if extension.get("url") != VISIBILITY_URL:
            continue
        for part in _list(extension.get("extension")):
            part = _dict(part)
            if part.get("url") == "pharmacies":
                pharmacies = str(part.get("valueCode") or "all")
            elif part.get("url") == "pharmacy":
                pharmacy = str(_dict(part.get("valueIdentifier")).get("value") or "")
            elif part.get("url") == "prescribers":
                prescribers = str(part.get("valueCode") or "open")
    return pharmacies, pharmacy, prescribers


def prescription(resource: dict[str, Any]) -> Prescription:
    status = str(resource.get("status") or "")
    reason = _reason_code(resource)
    dosage = " ".join(
        str(_dict(d).get("text"))
        for d in _list(resource.get("dosageInstruction"))
        if _dict(d).get("text")
    )
    validity = _dict(_dict(resource.get("dispenseRequest")).get("validityPeriod"))
    pharmacies, pharmacy, prescribers = visibility(resource)
    lifecycle, holder, reserved = _lifecycle(resource)
    return Prescription(
        id=str(resource.get("id") or ""),
        rid=rid_of(resource),
        medication=_concept_text(resource.get("medicationCodeableConcept")),
        dosage=dosage,
        status=status,
        status_reason=reason,
        state=_state(status, reason, lifecycle),
        authored_on=str(resource.get("authoredOn") or ""),
        valid_from=str(validity.get("start") or ""),
        valid_until=str(validity.get("end") or ""),
        prescriber_nihdi=_identifier_value(resource.get("requester")),
        pharmacies=pharmacies,
        pharmacy=pharmacy,
        prescribers=prescribers,
        holder=holder,
        reserved=reserved,
    )


# -- attestations and reimbursements -------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    code: str
    text: str


@dataclass(frozen=True)
class Attestation:
    id: str
    created: str
    provider_nihdi: str
    services: str
    paid: float | None
    state: str  # queued | delivered | settled | refused | failed | cancelled
    reimbursed: float | None
    patient_share: float | None
    disposition: str
    refusals: list[Refusal] = field(default_factory=list)


def _claim_state(resource: dict[str, Any]) -> str:
    for tag in _list(_dict(resource.get("meta")).get("tag")):
        tag = _dict(tag)
        if tag.get("system") == CLAIM_STATE_TAG and isinstance(tag.get("code"), str):
            return str(tag["code"])
    return ""


def _amount(value: Any) -> float | None:
    number = _dict(value).get("value")
    return (
        float(number) if isinstance(number, int | float) and not isinstance(number, bool) else None
    )


def _total(response: dict[str, Any], code: str) -> float | None:
    for total in _list(response.get("total")):
        total = _dict(total)
        codes = [_dict(c).get("code") for c in _list(_dict(total.get("category")).get("coding"))]
        if code in codes:
            return _amount(total.get("amount"))
    return None


def claim_of(response: dict[str, Any]) -> str:
    reference = _dict(response.get("request")).get("reference")
    if isinstance(reference, str) and reference.startswith("Claim/"):
        return reference.removeprefix("Claim/")
    return ""


def attestation(claim: dict[str, Any], response: dict[str, Any] | None) -> Attestation:
    answer = response or {}
    services = ", ".join(
        _concept_text(_dict(item).get("productOrService")) for item in _list(claim.get("item"))
    )
    refusals = []
    for error in _list(answer.get("error")):
        coding = _dict((_list(_dict(_dict(error).get("code")).get("coding")) or [{}])[0])
        refusals.append(Refusal(str(coding.get("code") or ""), str(coding.get("display") or "")))
    return Attestation(
        id=str(claim.get("id") or ""),
        created=str(claim.get("created") or ""),
        provider_nihdi=_identifier_value(claim.get("provider")),
        services=services,
        paid=_amount(claim.get("total")),
        state=_claim_state(claim),
        reimbursed=_total(answer, "benefit"),
        patient_share=_total(answer, "copay"),
        disposition=str(answer.get("disposition") or ""),
        refusals=refusals,
    )


# -- consent, relationships, exclusions -----------------------------------------------------------


@dataclass(frozen=True)
class ConsentRecord:
    id: str
    category: str
    status: str
    actor_nihdi: str
    kind: str
    start: str
    end: str
    recorded: str


def consent_record(resource: dict[str, Any]) -> ConsentRecord:
    category = ""
    for concept in _list(resource.get("category")):
        for coding in _list(_dict(concept).get("coding")):
            coding = _dict(coding)
            if coding.get("system") == KIND_SYSTEM:
                category = str(coding.get("code") or "")
    provision = _dict(resource.get("provision"))
    actors = _list(provision.get("actor"))
    actor = _identifier_value(_dict(actors[0]).get("reference")) if actors else ""
    kind = ""
    for concept in _list(provision.get("code")):
        for coding in _list(_dict(concept).get("coding")):
            if _dict(coding).get("system") == RELATIONSHIP_KIND_SYSTEM:
                kind = str(_dict(coding).get("code") or "")
    period = _dict(provision.get("period"))
    return ConsentRecord(
        id=str(resource.get("id") or ""),
        category=category,
        status=str(resource.get("status") or ""),
        actor_nihdi=actor,
        kind=kind,
        start=str(period.get("start") or resource.get("dateTime") or ""),
        end=str(period.get("end") or ""),
        recorded=str(resource.get("dateTime") or ""),
    )


# -- access log ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    recorded: str
    who: str  # NIHDI number, or "" for the patient himself / a client id
    who_is_patient: bool
    client_id: str
    role: str
    action: str  # C R U D E
    what: str  # resource type
    outcome: str  # permitted | refused | error
    reason: str


_OUTCOMES = {"0": "permitted", "4": "refused", "8": "error", "12": "error"}


def access(event: dict[str, Any]) -> Access:
    agent = _dict((_list(event.get("agent")) or [{}])[0])
    who = _dict(_dict(agent.get("who")).get("identifier"))
    role = ""
    for concept in _list(agent.get("role")):
        for coding in _list(_dict(concept).get("coding")):
            role = str(_dict(coding).get("code") or role)
    entity = _dict((_list(event.get("entity")) or [{}])[0])
    what = _dict(entity.get("what"))
    what_text = str(what.get("type") or what.get("reference") or "")
    who_system = str(who.get("system") or "")
    return Access(
        recorded=str(event.get("recorded") or ""),
        who=str(who.get("value") or "") if "nihdi" in who_system else "",
        who_is_patient=who_system == systems.SSIN,
        client_id=str(agent.get("altId") or ""),
        role=role,
        action=str(event.get("action") or ""),
        what=what_text.split("/")[0],
        outcome=_OUTCOMES.get(str(event.get("outcome")), "error"),
        reason=str(event.get("outcomeDesc") or ""),
    )
