"""The eAttest claim profile (BeEattestationClaim, domain AT-2..AT-7) for a create and a cancel.

``validate_claim`` parses the body once with fhir.resources (FHIR R4 structure), then runs one small
function per rule (``fhir_profiles.rules.claim_*``) over the plain dict. On success it returns the
normalised dict to store and the facts the gateway indexes; the model is discarded, never
re-serialised (docs/architecture.md 9). Elements the eAttest profile fixes (``status``, ``use``, ``priority``,
``insurance``) and the FHIR claim category (``type``) are filled in when absent, so a provider sends
only what the attestation says.

``validate_cancel`` reads the ``Parameters`` of ``Claim/{id}/$cancel``: one reason A..G (AT-6).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from fhir.resources.R4B.claim import Claim
from fhir.resources.R4B.parameters import Parameters

from fhir_profiles import systems
from fhir_profiles._json import canonical_system, items, obj, text
from fhir_profiles.identifiers import normalise_ssin
from fhir_profiles.issues import Issue
from fhir_profiles.rules.claim_codes import (
    CANCEL_REASON,
    CANCEL_REASONS,
    CLAIM_TYPE,
    MANDATORY_COVERAGE,
    PROCESS_PRIORITY,
)
from fhir_profiles.rules.claim_header import (
    created_day,
    duplicate_override,
    rule_attestation_type,
    rule_created,
    rule_duplicate_override,
    rule_identifier,
    rule_status,
    rule_use,
)
from fhir_profiles.rules.claim_items import Service, rule_items, rule_total, services
from fhir_profiles.rules.claim_parties import (
    membership_fund,
    rule_enterer,
    rule_insurer,
    rule_patient,
    rule_provider,
)
from fhir_profiles.rules.eattest_invariants import claim_invariants
from fhir_profiles.structure import structure_issues

_CLAIM: Final = "Claim"
# BeEattestationClaim: priority is fixed to "stat", insurance to the mandatory coverage.
DEFAULT_PRIORITY: Final[Mapping[str, Any]] = {
    "coding": [{"system": PROCESS_PRIORITY, "code": "stat"}]
}
DEFAULT_TYPE: Final[Mapping[str, Any]] = {
    "coding": [{"system": CLAIM_TYPE, "code": "professional"}]
}


def _default_insurance() -> list[dict[str, Any]]:
    return [{"sequence": 1, "focal": True, "coverage": {"display": MANDATORY_COVERAGE}}]


@dataclass(frozen=True)
class ValidatedClaim:
    """An attestation that passed the profile, with the facts the gateway indexes."""

    resource: dict[str, Any]  # the normalised JSON dict to store, validated once
    patient_ssin: str | None  # digits only; None when named by his fund's membership number
    patient_key: str  # who the patient is, for the duplicate rule: the SSIN or fund|number
    provider_nihdi: str
    fund_code: str  # as sent: the union's code or an individual fund's (ID-13)
    created: date  # Brussels day
    services: tuple[Service, ...]
    duplicate_override: bool  # AT-7: the provider knowingly attests a service again


def _with_defaults(body: Mapping[str, Any]) -> dict[str, Any]:
    filled = dict(body)
    filled.setdefault("status", "active")
    filled.setdefault("use", "claim")
    if filled.get("type") is None:
        filled["type"] = dict(DEFAULT_TYPE)
    if filled.get("priority") is None:
        filled["priority"] = dict(DEFAULT_PRIORITY)
    if not filled.get("insurance"):
        filled["insurance"] = _default_insurance()
    patient = obj((obj(filled.get("patient")) or {}).get("identifier")) or {}
    fund = membership_fund(patient)
    if filled.get("insurer") is None and fund is not None:
        # ID-14: a member's fund is the one that assigned his number.
        filled["insurer"] = {"identifier": {"system": systems.INSURER, "value": fund}}
    return filled


def _belgian_issues(
    body: Mapping[str, Any], *, now: datetime, nihdi_check_digit: bool, message: bool
) -> list[Issue]:
    """Every rule runs, so a provider sees all its mistakes at once (one issue per violation)."""
    return [
        *rule_identifier(body),
        *rule_status(body),
        *rule_use(body),
        *rule_attestation_type(body),
        *rule_created(body, now=now),
        *rule_patient(body),
        *rule_provider(body, check_digit=nihdi_check_digit),
        *rule_insurer(body),
        *rule_items(body, now=now),
        *rule_total(body),
        *rule_duplicate_override(body),
        *rule_enterer(body, check_digit=nihdi_check_digit),
        *claim_invariants(body, supplements_required=message),
    ]


def _normalise(
    filled: dict[str, Any], *, patient_ssin: str | None, provider_nihdi: str
) -> dict[str, Any]:
    """Canonical systems (ID-22), SSIN digits only. Copy on write: the input is never mutated."""
    resource = dict(filled)
    named: list[tuple[str, str, str]] = [("provider", systems.NIHDI_PROFESSIONAL, provider_nihdi)]
    if patient_ssin is not None:
        named.append(("patient", systems.SSIN, patient_ssin))
    for element, system, value in named:
        reference = dict(filled[element])
        reference["identifier"] = {**reference["identifier"], "system": system, "value": value}
        resource[element] = reference
    insurer = dict(filled["insurer"])
    insurer["identifier"] = {**insurer["identifier"], "system": systems.INSURER}
    resource["insurer"] = insurer
    return resource


def validate_claim(
    body: dict[str, Any], *, now: datetime, nihdi_check_digit: bool = True, message: bool = False
) -> ValidatedClaim | list[Issue]:
    """Check an attestation for create against FHIR R4 and the eAttest profile.

    Returns the normalised claim, or every issue found; it never raises on bad input. Structure is
    checked first; the eAttest rules run only on a structurally valid body. ``now`` must be
    timezone-aware; ``nihdi_check_digit`` switches the ID-7 check (modulo 97 or 89); ``message``:
    the claim came in an eAttest request message, whose profile adds be-inv-supplement.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if not isinstance(body, dict) or body.get("resourceType") != _CLAIM:
        return [Issue("structure", _CLAIM, "the resource must be a Claim")]
    filled = _with_defaults(body)
    issues = structure_issues(Claim, _CLAIM, filled)
    if issues:
        return issues
    issues = _belgian_issues(filled, now=now, nihdi_check_digit=nihdi_check_digit, message=message)
    if issues:
        return issues

    # Every rule passed, so the elements read below exist and are well formed.
    patient = filled["patient"]["identifier"]
    patient_ssin: str | None = None
    if canonical_system(patient) == systems.INSURANCE_MEMBERSHIP:
        patient_key = f"member|{membership_fund(patient)}|{patient['value']}"
    else:
        patient_ssin = patient_key = normalise_ssin(patient["value"])
    provider_nihdi: str = filled["provider"]["identifier"]["value"]
    created = created_day(filled)
    assert created is not None  # rule_created
    return ValidatedClaim(
        resource=_normalise(filled, patient_ssin=patient_ssin, provider_nihdi=provider_nihdi),
        patient_ssin=patient_ssin,
        patient_key=patient_key,
        provider_nihdi=provider_nihdi,
        fund_code=filled["insurer"]["identifier"]["value"],
        created=created,
        services=tuple(services(filled)),
        duplicate_override=duplicate_override(filled),
    )


def validate_cancel(body: dict[str, Any]) -> str | list[Issue]:
    """AT-6: the ``Parameters`` of ``$cancel`` name one reason, A..G; returns its code.

    The reason is ``valueCoding`` (system BeCSEattestationCancelReason, or none) or ``valueCode``.
    """
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        return [Issue("structure", "Parameters", "the body must be a Parameters resource")]
    issues = structure_issues(Parameters, "Parameters", body)
    if issues:
        return issues
    reasons = [
        (i, obj(p) or {})
        for i, p in enumerate(items(body.get("parameter")))
        if (obj(p) or {}).get("name") == "reason"
    ]
    if len(reasons) != 1:
        message = "give exactly one parameter named reason (A..G)"
        return [Issue("required", "Parameters.parameter", message, "AT-6")]
    i, parameter = reasons[0]
    path = f"Parameters.parameter[{i}]"
    coding = obj(parameter.get("valueCoding"))
    if coding is not None:
        if coding.get("system") is not None and canonical_system(coding) != CANCEL_REASON:
            message = "the reason must come from the eAttest cancel reason code system"
            return [Issue("code-invalid", f"{path}.valueCoding.system", message, "AT-6")]
        code, where = text(coding.get("code")), f"{path}.valueCoding.code"
    else:
        code, where = text(parameter.get("valueCode")), f"{path}.valueCode"
    if code is None or code not in CANCEL_REASONS:
        message = "the cancel reason is one of A, B, C, D, E, F, G"
        return [Issue("code-invalid", where, message, "AT-6")]
    return code
