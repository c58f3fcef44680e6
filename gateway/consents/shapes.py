"""The wire shapes of docs/architecture.md 4c: informed consent, exclusion, therapeutic relationship and
mandate (RX-16, PO-4), all FHIR ``Consent`` about one patient, told apart by a ``category`` coding
of ``urn:ehealth-gateway:consent-kind``.

``parse_consent`` checks a client's Consent and returns it normalised (canonical systems, SSIN
digits, the ``scope``, ``provision.type``, ``dateTime``, ``policyRule`` and actor ``role`` that R4
requires filled in when absent) with the facts the store indexes. Violations are 422 issues
naming the rule (CO-*, ID-*) and never repeating the value at fault.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from fhir.resources.R4B.consent import Consent as ConsentModel

from consent import ByPresence, HolderRole, MandateAction, RelationshipKind, ResourceKind
from fhir_profiles import Issue, systems
from fhir_profiles.eid_card import CARD_NUMBER_TEXT, is_valid_card_number
from fhir_profiles.event_time import RANGE_TEXT, is_event_time
from fhir_profiles.identifiers import is_valid_ssin, normalise_ssin
from fhir_profiles.patients import patient_ssin_of
from fhir_profiles.structure import structure_issues
from gateway.access.facts import (
    CATEGORIES,
    EXCLUSION,
    INFORMED_CONSENT,
    MANDATE,
    RELATIONSHIP,
    RESOURCE,
)

KIND_SYSTEM: Final = "urn:ehealth-gateway:consent-kind"
RELATIONSHIP_KIND_SYSTEM: Final = "urn:ehealth-gateway:relationship-kind"
EID_CARD_SYSTEM: Final = "urn:ehealth-gateway:eid-card-number"
MANDATE_ACTION_SYSTEM: Final = "urn:ehealth-gateway:mandate-action"
MANDATE_ROLE_SYSTEM: Final = "urn:ehealth-gateway:mandate-role"
# RX-16 [decided]: a pharmacy collects and views for the residents it serves; it never manages
# a patient's consent, exclusions, relationships or visibility.
PROFESSIONAL_ACTIONS: Final = frozenset({MandateAction.COLLECT, MandateAction.VIEW})
SCOPE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/consentscope"
_ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_PARTICIPATION: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
_NIHDI_SYSTEMS: Final = frozenset(
    {systems.NIHDI, systems.NIHDI_PROFESSIONAL, systems.NIHDI_ORGANIZATION}
)
_NIHDI: Final = re.compile(r"^[0-9]{8,11}$")

KIND_OF_CATEGORY: Final = {
    INFORMED_CONSENT: ResourceKind.CONSENT,
    EXCLUSION: ResourceKind.EXCLUSION,
    RELATIONSHIP: ResourceKind.RELATIONSHIP,
    MANDATE: ResourceKind.MANDATE,
}
# docs/architecture.md 4c: the scope each category carries (exclusions: patient privacy, as consent).
_SCOPE: Final = {
    INFORMED_CONSENT: "patient-privacy",
    EXCLUSION: "patient-privacy",
    RELATIONSHIP: "treatment",
    MANDATE: "patient-privacy",
}
_PROVISION: Final = {
    INFORMED_CONSENT: "permit",
    EXCLUSION: "deny",
    RELATIONSHIP: "permit",
    MANDATE: "permit",
}


@dataclass(frozen=True)
class ParsedConsent:
    resource: dict[str, Any]
    category: str
    patient_ssin: str
    status: str
    actor_nihdi: str | None
    kind: RelationshipKind | None
    period_start: datetime | None  # relationships: provision.period.start when given
    presence: ByPresence | None  # verification[0]: the eID read (CO-2)
    holder_ssin: str | None = None  # mandate: a proxy's SSIN (a professional's: actor_nihdi)
    actions: frozenset[MandateAction] = frozenset()  # mandate: provision.action

    @property
    def resource_kind(self) -> ResourceKind:
        return KIND_OF_CATEGORY[self.category]


class _Issues:
    def __init__(self) -> None:
        self.found: list[Issue] = []

    def add(self, code: str, where: str, message: str, rule: str = "") -> None:
        self.found.append(Issue(code, f"Consent.{where}", message, rule))


def _codings(element: Any) -> list[dict[str, Any]]:
    if not isinstance(element, dict) or not isinstance(element.get("coding"), list):
        return []
    return [c for c in element["coding"] if isinstance(c, dict)]


def category_of(resource: dict[str, Any]) -> str | None:
    for concept in resource.get("category") or ():
        for coding in _codings(concept):
            if coding.get("system") == KIND_SYSTEM and coding.get("code") in CATEGORIES:
                return str(coding["code"])
    return None


def instant(value: Any) -> datetime | None:
    """A FHIR dateTime with a time and a zone in an event's years (``event_time``), else ``None``."""
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None and is_event_time(moment) else None


def fhir_instant(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def presence_of(resource: dict[str, Any], issues: _Issues | None = None) -> ByPresence | None:
    """CO-2, docs/architecture.md 4c: ``verification[0]`` = verified, the eID read time, the card number."""
    verifications = resource.get("verification")
    if not verifications:
        return None
    first = verifications[0] if isinstance(verifications, list) else None
    first = first if isinstance(first, dict) else {}
    # Also read from a PUT's raw body (no structure check there): every level may be anything.
    verified_with = first.get("verifiedWith")
    identifier = verified_with.get("identifier") if isinstance(verified_with, dict) else None
    identifier = identifier if isinstance(identifier, dict) else {}
    card, read_at = identifier.get("value"), instant(first.get("verificationDate"))
    ok = (
        first.get("verified") is True
        and read_at is not None
        and identifier.get("system") == EID_CARD_SYSTEM
        and isinstance(card, str)
    )
    if ok and not is_valid_card_number(str(card)):
        # A mistyped or made-up number: refused before the national register is asked.
        if issues is not None:
            issues.add(
                "value", "verification[0].verifiedWith.identifier.value", CARD_NUMBER_TEXT, "CO-2"
            )
        return None
    if not ok:
        if issues is not None:
            issues.add(
                "invalid",
                "verification[0]",
                "proof of presence: verified true, verificationDate with time and zone "
                f"{RANGE_TEXT}, verifiedWith.identifier of system {EID_CARD_SYSTEM}",
                "CO-2",
            )
        return None
    assert isinstance(card, str)
    assert read_at is not None
    return ByPresence(card, read_at)


def parse_presence(resource: dict[str, Any]) -> ByPresence | list[Issue] | None:
    """The proof of presence of a body that is otherwise not checked (an update): the proof, its
    issues (422), or ``None`` when it carries none."""
    issues = _Issues()
    presence = presence_of(resource, issues)
    return issues.found or presence


def _actor(provision: dict[str, Any], issues: _Issues, category: str) -> str | None:
    actors = provision.get("actor")
    rule = "CO-10" if category == EXCLUSION else "CO-7"
    if not isinstance(actors, list) or len(actors) != 1 or not isinstance(actors[0], dict):
        issues.add("required", "provision.actor", "exactly one actor: the provider", rule)
        return None
    identifier = (actors[0].get("reference") or {}).get("identifier") or {}
    system = systems.normalise_system(str(identifier.get("system", "")))
    value = identifier.get("value")
    if system not in _NIHDI_SYSTEMS or not isinstance(value, str) or not _NIHDI.match(value):
        issues.add(
            "value",
            "provision.actor[0].reference.identifier",
            "the provider's NIHDI number (professional, or organisation for a pharmacy)",
            "ID-9",
        )
        return None
    actors[0] = {
        "role": actors[0].get("role") or {"coding": [{"system": _PARTICIPATION, "code": "PRCP"}]},
        **{k: v for k, v in actors[0].items() if k != "role"},
        "reference": {
            **actors[0]["reference"],
            "identifier": {**identifier, "system": system, "value": value},
        },
    }
    return value


def _mandate_holder(
    provision: dict[str, Any], issues: _Issues, mandator: str | None
) -> tuple[str | None, str | None]:
    """RX-16: ``provision.actor[0]`` is the holder: role ``proxy`` with his SSIN, or
    ``professional`` with the pharmacy's organisation NIHDI. Returns (SSIN, NIHDI), one set."""
    actors = provision.get("actor")
    if not isinstance(actors, list) or len(actors) != 1 or not isinstance(actors[0], dict):
        issues.add("required", "provision.actor", "exactly one actor: the holder", "RX-16")
        return None, None
    reference = actors[0].get("reference")
    identifier = (reference.get("identifier") if isinstance(reference, dict) else None) or {}
    identifier = identifier if isinstance(identifier, dict) else {}
    system = systems.normalise_system(str(identifier.get("system", "")))
    value = identifier.get("value")
    role = None
    for coding in _codings(actors[0].get("role")):
        if coding.get("system") in (None, MANDATE_ROLE_SYSTEM):
            role = coding.get("code")
    holder_role = HolderRole.PROXY if system == systems.SSIN else HolderRole.PROFESSIONAL
    if role is not None and role != holder_role.value:
        issues.add(
            "value",
            "provision.actor[0].role",
            f"proxy (an SSIN) or professional (a pharmacy's organisation NIHDI), {MANDATE_ROLE_SYSTEM}",
            "RX-16",
        )
        return None, None
    where = "provision.actor[0].reference.identifier"
    ssin = nihdi = None
    if system == systems.SSIN and isinstance(value, str) and is_valid_ssin(normalise_ssin(value)):
        ssin = normalise_ssin(value)
        if ssin == mandator:
            issues.add("value", where, "the holder is not the patient himself", "RX-16")
            return None, None
    elif system == systems.NIHDI_ORGANIZATION and isinstance(value, str) and _NIHDI.match(value):
        nihdi = value
    else:
        issues.add(
            "value",
            where,
            "the holder's SSIN (a proxy) or a pharmacy's organisation NIHDI (professional)",
            "RX-16",
        )
        return None, None
    actors[0] = {
        **actors[0],
        "role": {"coding": [{"system": MANDATE_ROLE_SYSTEM, "code": holder_role.value}]},
        "reference": {
            **(reference if isinstance(reference, dict) else {}),
            "identifier": {**identifier, "system": system, "value": ssin or nihdi},
        },
    }
    return ssin, nihdi


def _mandate_actions(
    provision: dict[str, Any], issues: _Issues, professional: bool
) -> frozenset[MandateAction]:
    """RX-16: ``provision.action``, codes of ``urn:ehealth-gateway:mandate-action``; at least one,
    and a professional (a pharmacy) may not ``manage``."""
    found: set[MandateAction] = set()
    known = ", ".join(a.value for a in MandateAction)
    for concept in provision.get("action") or ():
        for coding in _codings(concept):
            if coding.get("system") != MANDATE_ACTION_SYSTEM:
                continue
            try:
                found.add(MandateAction(str(coding.get("code"))))
            except ValueError:
                issues.add("code-invalid", "provision.action", f"{known}", "RX-16")
                return frozenset()
    if not found:
        message = f"what the holder may do ({MANDATE_ACTION_SYSTEM}: {known})"
        issues.add("required", "provision.action", message, "RX-16")
    elif professional and not found <= PROFESSIONAL_ACTIONS:
        message = "a pharmacy's mandate allows collect and view, never manage"
        issues.add("business-rule", "provision.action", message, "RX-16")
    return frozenset(found)


def _relationship_kind(provision: dict[str, Any], issues: _Issues) -> RelationshipKind | None:
    for concept in provision.get("code") or ():
        for coding in _codings(concept):
            if coding.get("system") == RELATIONSHIP_KIND_SYSTEM:
                try:
                    return RelationshipKind(str(coding.get("code")))
                except ValueError:
                    break
    issues.add(
        "required",
        "provision.code",
        f"the relationship kind ({RELATIONSHIP_KIND_SYSTEM}: "
        + ", ".join(k.value for k in RelationshipKind)
        + ")",
        "CO-5",
    )
    return None


def parse_consent(body: dict[str, Any], now: datetime) -> ParsedConsent | list[Issue]:
    """The checked, normalised Consent, or the issues found (every rule runs)."""
    # FHIR datatypes first (fhir.resources), so the rules below meet the shapes they expect;
    # missing elements are left to the rules, which fill some in and name the others.
    malformed = [i for i in structure_issues(ConsentModel, RESOURCE, body) if i.code != "required"]
    if malformed:
        return malformed
    issues = _Issues()
    resource = dict(body)
    resource.pop("meta", None)
    status = resource.get("status")
    if status not in ("active", "inactive"):
        issues.add("value", "status", "status is active or inactive", "CO-4")
    category = category_of(resource)
    if category is None:
        issues.add(
            "required",
            "category",
            f"a category coding of {KIND_SYSTEM}: " + ", ".join(CATEGORIES),
            "CO-1",
        )
    ssin = patient_ssin_of(resource)
    if ssin is None:
        issues.add("value", "patient.identifier", "the patient's SSIN (valid check digits)", "ID-2")
    else:
        resource["patient"] = {
            **resource["patient"],
            "identifier": {
                **resource["patient"]["identifier"],
                "system": systems.SSIN,
                "value": ssin,
            },
        }
    presence = presence_of(resource, issues)
    provision = dict(resource.get("provision") or {})
    actor = kind = start = holder = None
    actions: frozenset[MandateAction] = frozenset()
    if category is not None:
        wanted = _PROVISION[category]
        if provision.get("type", wanted) != wanted:
            issues.add("value", "provision.type", f"a {category} is a {wanted} provision", "CO-1")
        provision["type"] = wanted
        if category == INFORMED_CONSENT:
            if provision.get("actor"):
                issues.add("value", "provision.actor", "the global consent names no actor", "CO-1")
        elif category == MANDATE:
            provision["actor"] = list(provision.get("actor") or [])
            holder, actor = _mandate_holder(provision, issues, ssin)
            actions = _mandate_actions(provision, issues, professional=actor is not None)
        else:
            provision["actor"] = list(provision.get("actor") or [])
            actor = _actor(provision, issues, category)
        if category in (RELATIONSHIP, MANDATE):
            if category == RELATIONSHIP:
                kind = _relationship_kind(provision, issues)
            period = provision.get("period") or {}
            if "start" in period:
                start = instant(period["start"])
                if start is None:
                    message = f"a dateTime with time and zone, {RANGE_TEXT}"
                    issues.add("value", "provision.period.start", message, "CO-7")
        # An end given by the client is what the store indexes (columns_of): it must be an instant.
        end = (provision.get("period") or {}).get("end")
        if end is not None and instant(end) is None:
            message = f"a dateTime with time and zone, {RANGE_TEXT}"
            issues.add("value", "provision.period.end", message)
        resource["provision"] = provision
        scope = _SCOPE[category]
        codes = [c.get("code") for c in _codings(resource.get("scope"))]
        if codes and scope not in codes:
            issues.add("value", "scope", f"a {category} has scope {scope}", "CO-1")
        resource["scope"] = resource.get("scope") or {
            "coding": [{"system": SCOPE_SYSTEM, "code": scope}]
        }
        if not resource.get("policy") and not resource.get("policyRule"):
            opt = "OPTOUT" if wanted == "deny" else "OPTIN"
            resource["policyRule"] = {"coding": [{"system": _ACT_CODE, "code": opt}]}
    if "dateTime" in resource and instant(resource["dateTime"]) is None:
        issues.add("value", "dateTime", f"a dateTime with time and zone, {RANGE_TEXT}", "CO-4")
    resource.setdefault("dateTime", fhir_instant(now))
    if issues.found:
        return issues.found
    assert category is not None
    assert ssin is not None
    assert isinstance(status, str)
    return ParsedConsent(
        resource, category, ssin, status, actor, kind, start, presence, holder, actions
    )
