"""The invariants of hl7-be BeEattestationClaim, and the care team they read (AT-3).

Each rule takes the JSON dict of a structurally valid ``Claim`` (the gateway's shape: the message's
other resources, if any, are in ``Claim.contained`` and referenced as ``#id``) and returns one issue
per violation. The rule id of an invariant is the guide's constraint key (``be-inv-gmf-holder``...),
so that a developer finds it in the guide; the FHIRPath points at the element at fault.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from fhir_profiles import systems
from fhir_profiles._json import canonical_system, items, obj, text
from fhir_profiles.issues import Issue
from fhir_profiles.rules.claim_codes import (
    ATTESTATION_TYPE,
    CD_HCPARTY,
    HOSPITAL_SERVICE,
    ITEM_PREAUTH,
    ITEM_SUPPLEMENT,
    ORAL_HYGIENIST,
    PHYSICIAN,
    REQUESTER_STANDARD,
    ROLE_ASSISTANT,
    ROLE_GMF_HOLDER,
    SNOMED,
    SUPPLEMENT,
    TOOTH_NUMBERS,
    TRANSPLANTATION,
)
from fhir_profiles.rules.claim_items import money

_CENT: Final = Decimal("0.01")
# Attestation types that may carry a body site, and those whose items need the medical advisor's
# decision number (be-inv-bodySite, be-inv-medical-advisor-decision-nr).
_BODY_SITE_TYPES: Final = frozenset({"specializedmedicine", "dentistry"})
_PREAUTH_TYPES: Final = frozenset({"physiotherapy", "speechtherapy"})
# be-inv-supplement: these attestations state the supplement, on the claim and on every item.
SUPPLEMENT_TYPES: Final = frozenset({"specializedmedicine", "generalpractice", "dentistry"})


def attestation_type(body: Mapping[str, Any]) -> str | None:
    """The attestation type code on ``subType`` (AT-2), or ``None``."""
    concept = obj(body.get("subType")) or {}
    for coding in items(concept.get("coding")):
        coding = obj(coding) or {}
        if text(coding.get("system")) == ATTESTATION_TYPE:
            return text(coding.get("code"))
    return None


def _codes(concept: Any, system: str | None = None) -> set[str]:
    """The codes of a CodeableConcept (in ``system`` when given)."""
    found = set()
    for coding in items((obj(concept) or {}).get("coding")):
        coding = obj(coding) or {}
        code = text(coding.get("code"))
        if code is not None and (system is None or canonical_system(coding) == system):
            found.add(code)
    return found


def _has_extension(element: Mapping[str, Any], url: str) -> bool:
    return any((obj(e) or {}).get("url") == url for e in items(element.get("extension")))


def contained(body: Mapping[str, Any], reference: Any) -> dict[str, Any] | None:
    """The contained resource a ``Reference`` names as ``#id``, or ``None``."""
    ref = text((obj(reference) or {}).get("reference"))
    if ref is None or not ref.startswith("#"):
        return None
    for resource in items(body.get("contained")):
        resource = obj(resource) or {}
        if resource.get("id") == ref[1:]:
            return resource
    return None


# -- the care team -------------------------------------------------------------------------------


def rule_care_team(body: Mapping[str, Any]) -> list[Issue]:
    """BeEattestationClaim: each member named by an 11-digit NIHDI number, with one role and one
    qualification (cd-hcparty); an item's ``careTeamSequence`` names members of the team."""
    issues: list[Issue] = []
    sequences = set()
    for i, raw in enumerate(items(body.get("careTeam"))):
        member = obj(raw) or {}
        path = f"Claim.careTeam[{i}]"
        sequences.add(member.get("sequence"))
        identifier = obj((obj(member.get("provider")) or {}).get("identifier")) or {}
        value = text(identifier.get("value"))
        if canonical_system(identifier) not in (systems.NIHDI, systems.NIHDI_PROFESSIONAL):
            message = "a care team member is named by his NIHDI number (system nihdi)"
            issues.append(Issue("required", f"{path}.provider.identifier", message, "AT-3"))
        elif value is None or not (len(value) == 11 and value.isascii() and value.isdigit()):
            message = "a care team member's NIHDI number has 11 digits"
            issues.append(Issue("value", f"{path}.provider.identifier.value", message, "ID-6"))
        if len(items((obj(member.get("role")) or {}).get("coding"))) != 1:
            message = "a care team member has one role (claimcareteamrole)"
            issues.append(Issue("required", f"{path}.role", message, "AT-3"))
        if not _codes(member.get("qualification"), CD_HCPARTY):
            message = "a care team member has a qualification from cd-hcparty"
            issues.append(Issue("required", f"{path}.qualification", message, "AT-3"))
    for i, raw in enumerate(items(body.get("item"))):
        for j, sequence in enumerate(items((obj(raw) or {}).get("careTeamSequence"))):
            if sequence not in sequences:
                message = "careTeamSequence names no member of the care team"
                path = f"Claim.item[{i}].careTeamSequence[{j}]"
                issues.append(Issue("invalid", path, message, "AT-3"))
    return issues


def _members(body: Mapping[str, Any], role: str | None, qualification: str) -> list[int]:
    found = []
    for i, raw in enumerate(items(body.get("careTeam"))):
        member = obj(raw) or {}
        roles = _codes(member.get("role"))
        if (role is None or role in roles) and qualification in _codes(
            member.get("qualification"), CD_HCPARTY
        ):
            found.append(i)
    return found


def rule_gmf_holder(body: Mapping[str, Any]) -> list[Issue]:
    """be-inv-gmf-holder: the GMF holder (role ``other``, a physician) only in a GP's attestation."""
    if attestation_type(body) == "generalpractice":
        return []
    message = "a GMF holder can only be named in a general practice attestation"
    return [
        Issue("invariant", f"Claim.careTeam[{i}]", message, "be-inv-gmf-holder")
        for i in _members(body, ROLE_GMF_HOLDER, PHYSICIAN)
    ]


def rule_trainee(body: Mapping[str, Any]) -> list[Issue]:
    """be-inv-trainee: a trainee (role ``assist``, a physician) only in a GP's attestation."""
    if attestation_type(body) == "generalpractice":
        return []
    message = "a trainee can only be named in a general practice attestation"
    return [
        Issue("invariant", f"Claim.careTeam[{i}]", message, "be-inv-trainee")
        for i in _members(body, ROLE_ASSISTANT, PHYSICIAN)
    ]


def rule_oral_hygienist(body: Mapping[str, Any]) -> list[Issue]:
    """be-inv-oral-hygienist: an oral hygienist only in a dentist's attestation."""
    if attestation_type(body) == "dentistry":
        return []
    message = "an oral hygienist can only be named in a dentistry attestation"
    return [
        Issue("invariant", f"Claim.careTeam[{i}].qualification", message, "be-inv-oral-hygienist")
        for i in _members(body, None, ORAL_HYGIENIST)
    ]


# -- the items -----------------------------------------------------------------------------------


def rule_body_site(body: Mapping[str, Any]) -> list[Issue]:
    """be-inv-bodySite: a body site (and laterality) only in specialised medicine or dentistry;
    be-inv-toothNumber: in dentistry, a coded body site is a tooth (SNOMED CT, ISO 3950 number)."""
    kind = attestation_type(body)
    issues = []
    for i, raw in enumerate(items(body.get("item"))):
        site = (obj(raw) or {}).get("bodySite")
        if site is None:
            continue
        path = f"Claim.item[{i}].bodySite"
        if kind not in _BODY_SITE_TYPES:
            message = "a body site only in a specialised medicine or dentistry attestation"
            issues.append(Issue("invariant", path, message, "be-inv-bodySite"))
        elif kind == "dentistry":
            for j, coding in enumerate(items((obj(site) or {}).get("coding"))):
                coding = obj(coding) or {}
                if coding.get("system") != SNOMED or coding.get("code") not in TOOTH_NUMBERS:
                    message = "in a dentistry attestation the body site is a tooth number"
                    where = f"{path}.coding[{j}]"
                    issues.append(Issue("invariant", where, message, "be-inv-toothNumber"))
    return issues


def rule_medical_advisor(body: Mapping[str, Any]) -> list[Issue]:
    """be-inv-medical-advisor-decision-nr: every item of a physiotherapy or speech therapy
    attestation carries the medical advisor's decision number; no other attestation does."""
    needed = attestation_type(body) in _PREAUTH_TYPES
    issues = []
    for i, raw in enumerate(items(body.get("item"))):
        has = _has_extension(obj(raw) or {}, ITEM_PREAUTH)
        if needed and not has:
            message = "this attestation type needs the medical advisor's decision number per item"
            where = f"Claim.item[{i}].extension"
            issues.append(Issue("invariant", where, message, "be-inv-medical-advisor-decision-nr"))
        elif has and not needed:
            message = "a medical advisor's decision number only in physiotherapy or speech therapy"
            where = f"Claim.item[{i}].extension"
            issues.append(Issue("invariant", where, message, "be-inv-medical-advisor-decision-nr"))
    return issues


def rule_transplantation(body: Mapping[str, Any]) -> list[Issue]:
    """be-inv-transplantation: a transplantation code only in specialised medicine."""
    if attestation_type(body) == "specializedmedicine":
        return []
    message = "a transplantation can only be attested in specialised medicine"
    return [
        Issue("invariant", f"Claim.supportingInfo[{i}].code", message, "be-inv-transplantation")
        for i, raw in enumerate(items(body.get("supportingInfo")))
        if _codes((obj(raw) or {}).get("code"), TRANSPLANTATION)
    ]


def rule_location(body: Mapping[str, Any]) -> list[Issue]:
    """be-inv-location: an item's place is a Location in the message with a hospital service code
    (type) or a managing organisation named by its NIHDI number."""
    issues = []
    for i, raw in enumerate(items(body.get("item"))):
        reference = (obj(raw) or {}).get("locationReference")
        if reference is None:
            continue
        path = f"Claim.item[{i}].locationReference"
        location = contained(body, reference)
        if location is None or location.get("resourceType") != "Location":
            message = "the place of the service must be a Location of the message"
            issues.append(Issue("invalid", path, message, "be-inv-location"))
            continue
        organisation = obj(location.get("managingOrganization")) or {}
        resolved = contained(body, organisation) or {}
        identifiers = [obj(organisation.get("identifier")) or {}] + [
            obj(x) or {} for x in items(resolved.get("identifier"))
        ]
        by_nihdi = any(canonical_system(x) == systems.NIHDI and x.get("value") for x in identifiers)
        services = [_codes(t, HOSPITAL_SERVICE) for t in items(location.get("type"))]
        if not (any(services) or by_nihdi):
            message = (
                "the Location needs a hospital service code (type) or a managing organisation "
                "with its NIHDI number"
            )
            issues.append(Issue("invariant", path, message, "be-inv-location"))
    return issues


# -- prescriptions -------------------------------------------------------------------------------


def prescriptions(body: Mapping[str, Any]) -> list[tuple[int, dict[str, Any] | None]]:
    """(supportingInfo index, the ServiceRequest it references, or ``None`` if unresolved)."""
    found = []
    for i, raw in enumerate(items(body.get("supportingInfo"))):
        reference = (obj(raw) or {}).get("valueReference")
        if reference is not None:
            found.append((i, contained(body, reference)))
    return found


def rule_prescriptions(body: Mapping[str, Any]) -> list[Issue]:
    """be-inv-eattestation-prescription-standard and BeEattestationServiceRequest: a prescription
    in ``supportingInfo`` is a ServiceRequest of the message with the prescriber's standard, an
    active order, its date and a prescriber (a PractitionerRole whose Practitioner has an NIHDI
    number). [A] A physiotherapy attestation needs a prescription (physiotherapy is reimbursed
    on a physician's prescription)."""
    issues = []
    found = prescriptions(body)
    for i, request in found:
        path = f"Claim.supportingInfo[{i}].valueReference"
        if request is None or request.get("resourceType") != "ServiceRequest":
            message = "a prescription must be a ServiceRequest of the message"
            issues.append(Issue("invalid", path, message, "AT-3"))
            continue
        if not _has_extension(request, REQUESTER_STANDARD):
            message = "the prescription needs the prescriber's standard (requester standard)"
            rule = "be-inv-eattestation-prescription-standard"
            issues.append(Issue("invariant", path, message, rule))
        if request.get("intent") != "order" or request.get("status") != "active":
            message = "a prescription is an active order (status active, intent order)"
            issues.append(Issue("value", path, message, "AT-3"))
        if text(request.get("authoredOn")) is None:
            message = "the prescription needs its date (authoredOn)"
            issues.append(Issue("required", path, message, "AT-3"))
        if _prescriber_nihdi(body, request) is None:
            message = "the prescription needs its prescriber (a PractitionerRole with NIHDI number)"
            issues.append(Issue("required", path, message, "AT-3"))
    if attestation_type(body) == "physiotherapy" and not found:
        message = "a physiotherapy attestation needs the prescription (supportingInfo)"
        issues.append(Issue("required", "Claim.supportingInfo", message, "AT-3"))
    return issues


def _prescriber_nihdi(body: Mapping[str, Any], request: Mapping[str, Any]) -> str | None:
    role = contained(body, request.get("requester")) or {}
    practitioner = contained(body, role.get("practitioner")) or {}
    for identifier in items(practitioner.get("identifier")):
        identifier = obj(identifier) or {}
        if canonical_system(identifier) in (systems.NIHDI, systems.NIHDI_PROFESSIONAL):
            return text(identifier.get("value"))
    return None


# -- supplements ---------------------------------------------------------------------------------


def _supplement(element: Mapping[str, Any], url: str) -> tuple[int, Any] | None:
    for k, ext in enumerate(items(element.get("extension"))):
        ext = obj(ext) or {}
        if ext.get("url") == url:
            return k, ext.get("valueMoney")
    return None


def rule_supplements(body: Mapping[str, Any], *, required: bool) -> list[Issue]:
    """Supplements (paid by the patient above the fee, AT-3): amounts in EUR; the claim's is the
    sum of the items' [A]. ``required`` (be-inv-supplement, a create message of specialised
    medicine, general practice or dentistry): on the claim and on every item, 0 when none."""
    issues: list[Issue] = []
    total = _supplement(body, SUPPLEMENT)
    needed = required and attestation_type(body) in SUPPLEMENT_TYPES
    parts: list[Decimal | None] = []
    for i, raw in enumerate(items(body.get("item"))):
        found = _supplement(obj(raw) or {}, ITEM_SUPPLEMENT)
        if found is None:
            parts.append(None)
            if needed:
                message = "this attestation type states the supplement of every item (0 if none)"
                where = f"Claim.item[{i}].extension"
                issues.append(Issue("invariant", where, message, "be-inv-supplement"))
            continue
        k, value = found
        amount, bad = money(value, f"Claim.item[{i}].extension[{k}].valueMoney", "supplement")
        issues.extend(bad)
        parts.append(amount)
    if total is None:
        if needed:
            message = "this attestation type states the total supplement (0 if none)"
            issues.append(Issue("invariant", "Claim.extension", message, "be-inv-supplement"))
        return issues
    k, value = total
    amount, bad = money(value, f"Claim.extension[{k}].valueMoney", "supplement")
    issues.extend(bad)
    known = [p for p in parts if p is not None]
    complete = bool(known) and len(known) == len(parts)
    if (
        amount is not None
        and complete
        and sum(known, Decimal(0)).quantize(_CENT) != amount.quantize(_CENT)
    ):
        message = "the total supplement must equal the sum of the items' supplements"
        where = f"Claim.extension[{k}].valueMoney.value"
        issues.append(Issue("invariant", where, message, "AT-3"))
    return issues


def claim_invariants(body: Mapping[str, Any], *, supplements_required: bool) -> list[Issue]:
    """Every invariant of BeEattestationClaim that a create can break (both intake paths);
    ``supplements_required``: the message's be-inv-supplement (BeEattestationRequest)."""
    return [
        *rule_care_team(body),
        *rule_gmf_holder(body),
        *rule_trainee(body),
        *rule_oral_hygienist(body),
        *rule_body_site(body),
        *rule_medical_advisor(body),
        *rule_transplantation(body),
        *rule_location(body),
        *rule_prescriptions(body),
        *rule_supplements(body, required=supplements_required),
    ]
