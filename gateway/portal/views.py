"""FHIR resources turned into the plain rows the templates show. Pure functions over JSON: a
missing or odd element shows as empty, never as an error."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
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

# Maximum billing as the mock funds state it on a settlement (mutualities/README.md): one extension
# per calendar year with the household's counter, and an adjudication for the share the fund paid.
MAXIMUM_BILLING_URL = "urn:ehealth-gateway:maximum-billing"
MAXIMUM_BILLING = "maximum-billing"
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Refusal:
    code: str
    text: str


@dataclass(frozen=True)
class ServiceLine:
    """One service as the fund attested it (hl7-be/eattestation ClaimResponse ``addItem``), or as
    the provider sent it while the fund has not answered."""

    serviced: str
    service: str
    quantity: float | None
    unit_price: float | None
    net: float | None
    paid_by_cap: float | None = None


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
    lines: list[ServiceLine] = field(default_factory=list)
    paid_by_cap: float | None = None  # the part of the patient's share paid under maximum billing


@dataclass(frozen=True)
class HouseholdCeiling:
    """A household's maximum-billing counter of one year, as the fund last stated it."""

    year: int
    ceiling: float
    running_total: float
    reached_on: str  # the date the ceiling was reached, "" while below it
    stated_on: str  # when the fund stated it (its settlement's ``created``)

    @property
    def left(self) -> float:
        return max(0.0, round(self.ceiling - self.running_total, 2))


def _claim_state(resource: dict[str, Any]) -> str:
    for tag in _list(_dict(resource.get("meta")).get("tag")):
        tag = _dict(tag)
        if tag.get("system") == CLAIM_STATE_TAG and isinstance(tag.get("code"), str):
            return str(tag["code"])
    return ""


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _amount(value: Any) -> float | None:
    return _number(_dict(value).get("value"))


def _adjudicated(entries: Any, code: str) -> float | None:
    for entry in _list(entries):
        entry = _dict(entry)
        codes = [_dict(c).get("code") for c in _list(_dict(entry.get("category")).get("coding"))]
        if code in codes:
            return _amount(entry.get("amount"))
    return None


def _total(response: dict[str, Any], code: str) -> float | None:
    return _adjudicated(response.get("total"), code)


def claim_of(response: dict[str, Any]) -> str:
    reference = _dict(response.get("request")).get("reference")
    if isinstance(reference, str) and reference.startswith("Claim/"):
        return reference.removeprefix("Claim/")
    return ""


def _service_line(item: dict[str, Any]) -> ServiceLine:
    return ServiceLine(
        serviced=str(item.get("servicedDate") or ""),
        service=_concept_text(item.get("productOrService")),
        quantity=_number(_dict(item.get("quantity")).get("value")),
        unit_price=_amount(item.get("unitPrice")),
        net=_amount(item.get("net")),
        paid_by_cap=_adjudicated(item.get("adjudication"), MAXIMUM_BILLING),
    )


def _provider_of(claim: dict[str, Any], added: list[Any]) -> str:
    """The provider the fund names on its services (``addItem.provider``), else the claim's."""
    for item in added:
        for provider in _list(_dict(item).get("provider")):
            if nihdi := _identifier_value(provider):
                return nihdi
    return _identifier_value(claim.get("provider"))


def attestation(claim: dict[str, Any], response: dict[str, Any] | None) -> Attestation:
    answer = response or {}
    # The fund's answer in the guide's shape lists the services it attested (addItem); before it
    # answers, or if it answered without them, the services are the claim's own.
    added = [_dict(item) for item in _list(answer.get("addItem"))]
    items = added or [_dict(item) for item in _list(claim.get("item"))]
    lines = [_service_line(item) for item in items]
    refusals = []
    for error in _list(answer.get("error")):
        coding = _dict((_list(_dict(_dict(error).get("code")).get("coding")) or [{}])[0])
        refusals.append(Refusal(str(coding.get("code") or ""), str(coding.get("display") or "")))
    return Attestation(
        id=str(claim.get("id") or ""),
        created=str(claim.get("created") or ""),
        provider_nihdi=_provider_of(claim, added),
        services=", ".join(line.service for line in lines),
        paid=_amount(claim.get("total")),
        state=_claim_state(claim),
        reimbursed=_total(answer, "benefit"),
        patient_share=_total(answer, "copay"),
        disposition=str(answer.get("disposition") or ""),
        refusals=refusals,
        lines=lines,
        paid_by_cap=_total(answer, MAXIMUM_BILLING),
    )


def household_ceiling(responses: list[dict[str, Any]]) -> HouseholdCeiling | None:
    """The household's counter of the latest year, as the latest settlement stating it says.

    Each settlement of the patient's fund states the counter as it stood then (the whole
    household's, other members' shares included); the most recent statement is the one shown.
    The fund dates a settlement to the second, and settles several in one second: among those,
    the latest is the one the gateway stored last (``meta.lastUpdated``), since it applies the
    fund's settlement feed in the fund's order.
    """
    found: list[tuple[int, str, datetime, HouseholdCeiling]] = []
    for response in responses:
        stated_on = str(response.get("created") or "")
        for extension in _list(response.get("extension")):
            extension = _dict(extension)
            if extension.get("url") == MAXIMUM_BILLING_URL:
                counter = _counter(_list(extension.get("extension")), stated_on)
                if counter is not None:
                    found.append((counter.year, stated_on, _stored_at(response), counter))
    if not found:
        return None
    return max(found, key=lambda entry: entry[:3])[3]


def _stored_at(resource: dict[str, Any]) -> datetime:
    """When the gateway stored this version (``meta.lastUpdated``); the epoch when it says none."""
    stamp = _dict(resource.get("meta")).get("lastUpdated")
    try:
        stored = datetime.fromisoformat(stamp) if isinstance(stamp, str) else _NEVER
    except ValueError:
        return _NEVER
    return stored if stored.tzinfo is not None else stored.replace(tzinfo=UTC)


def _counter(parts: list[Any], stated_on: str) -> HouseholdCeiling | None:
    values: dict[str, Any] = {}
    for part in parts:
        part = _dict(part)
        for key, value in part.items():
            if key.startswith("value"):
                values[str(part.get("url"))] = _amount(value) if key == "valueMoney" else value
    year, ceiling, total = values.get("year"), values.get("ceiling"), values.get("runningTotal")
    if not isinstance(year, int) or ceiling is None or total is None:
        return None
    reached = values.get("reachedOn")
    return HouseholdCeiling(
        year=year,
        ceiling=ceiling,
        running_total=total,
        reached_on=reached if isinstance(reached, str) else "",
        stated_on=stated_on,
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
