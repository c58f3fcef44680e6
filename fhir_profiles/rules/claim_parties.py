"""Who an attestation is about and between: patient, care provider, insurer (AT-3, ID-1..ID-14).

Every rule takes the JSON dict of a structurally valid ``Claim`` and returns one issue per violation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from fhir_profiles import systems
from fhir_profiles._json import canonical_system, is_pseudonymised, obj, text
from fhir_profiles.identifiers import is_valid_nihdi_professional, is_valid_ssin, normalise_ssin
from fhir_profiles.issues import Issue
from fhir_profiles.rules.claim_codes import UNION_CODES, union_of

# ID-20/ID-22: a care provider's number, under the professional or the generic NIHDI system (the
# legacy nihdi-practitioner alias is folded into nihdi-professional by normalise_system).
PROVIDER_SYSTEMS: Final = frozenset({systems.NIHDI_PROFESSIONAL, systems.NIHDI})
# [A] The longest membership number accepted (the guide's example has 13 digits).
MEMBERSHIP_MAX: Final = 32


def _identifier(
    body: Mapping[str, Any], element: str, what: str, rule: str
) -> tuple[dict[str, Any] | None, list[Issue]]:
    """``Claim.<element>.identifier`` or the issue saying it is missing (a logical reference)."""
    reference = obj(body.get(element))
    if reference is None:
        return None, [Issue("required", f"Claim.{element}", f"the {what} is required", rule)]
    identifier = obj(reference.get("identifier"))
    if identifier is None:
        message = f"the {what} must be identified by an identifier (a logical reference)"
        return None, [Issue("required", f"Claim.{element}.identifier", message, rule)]
    return identifier, []


def rule_patient(body: Mapping[str, Any]) -> list[Issue]:
    """AT-3, ID-1..ID-5: the patient by SSIN (national or BIS number) with valid check digits, or
    (ID-14) by his membership number at his fund, the fund as the identifier's ``assigner``, as the
    guide's general practice example does: the fund knows its member.

    A pseudonymised SSIN (ID-21) is refused: the insurer needs the person it reimburses.
    """
    identifier, issues = _identifier(body, "patient", "patient", "AT-3")
    if identifier is None:
        return issues
    if canonical_system(identifier) == systems.INSURANCE_MEMBERSHIP:
        return _membership(identifier)
    if canonical_system(identifier) != systems.SSIN:
        message = "the patient identifier must use the SSIN or the insurance membership system"
        issues.append(Issue("value", "Claim.patient.identifier.system", message, "ID-20"))
    path = "Claim.patient.identifier.value"
    value = text(identifier.get("value"))
    if not value:
        issues.append(Issue("required", path, "the SSIN is required", "AT-3"))
    elif is_pseudonymised(identifier):
        message = "an attestation needs the patient's SSIN, not a pseudonym"
        issues.append(Issue("business-rule", path, message, "AT-3"))
    else:
        digits = normalise_ssin(value)
        if not (len(digits) == 11 and digits.isascii() and digits.isdigit()):
            issues.append(Issue("value", path, "an SSIN has 11 digits", "ID-1"))
        elif not is_valid_ssin(digits):
            issues.append(Issue("value", path, "the SSIN check digits do not match", "ID-2"))
    return issues


def _membership(identifier: Mapping[str, Any]) -> list[Issue]:
    """ID-14: a membership number (1 to 32 letters and digits) and its fund as ``assigner``."""
    issues = []
    value = text(identifier.get("value"))
    path = "Claim.patient.identifier"
    if not value or len(value) > MEMBERSHIP_MAX or not (value.isascii() and value.isalnum()):
        message = f"a membership number has 1 to {MEMBERSHIP_MAX} letters and digits"
        issues.append(Issue("value", f"{path}.value", message, "ID-14"))
    fund = membership_fund(identifier)
    if fund is None:
        message = "a membership number needs its fund (assigner.identifier, insurancenumber system)"
        issues.append(Issue("required", f"{path}.assigner.identifier", message, "ID-14"))
    else:
        issues.extend(_fund_code(fund, f"{path}.assigner.identifier.value"))
    return issues


def membership_fund(identifier: Mapping[str, Any]) -> str | None:
    """The fund code in a membership identifier's ``assigner`` (insurancenumber), or ``None``."""
    assigner = obj(obj(identifier.get("assigner")) or {}) or {}
    fund = obj(assigner.get("identifier")) or {}
    if canonical_system(fund) != systems.INSURER:
        return None
    return text(fund.get("value"))


def _fund_code(value: str | None, path: str) -> list[Issue]:
    """ID-13: a fund code is 3 digits within a national union's hundred."""
    if not value:
        return [Issue("required", path, "the fund code is required", "ID-13")]
    if not (len(value) == 3 and value.isascii() and value.isdigit()):
        return [Issue("value", path, "a fund code has 3 digits", "ID-13")]
    if union_of(value) not in UNION_CODES:
        message = "the fund code belongs to no national union (100-600, 900)"
        return [Issue("code-invalid", path, message, "ID-13")]
    return []


def rule_provider(body: Mapping[str, Any], *, check_digit: bool = True) -> list[Issue]:
    """AT-3, ID-6, ID-7: the care provider by an 11-digit NIHDI professional number.

    Any profession may attest (GP, specialist, dentist, physiotherapist, speech therapist: AT-2), so
    unlike a prescription there is no profession check (ID-8). The 8-digit form is refused (ID-6):
    it names the person but not the competence code the care is attested under [A].
    ``check_digit`` switches the ID-7 check (modulo 97 or 89) off.
    """
    identifier, issues = _identifier(body, "provider", "care provider", "AT-3")
    if identifier is None:
        return issues
    if canonical_system(identifier) not in PROVIDER_SYSTEMS:
        message = "the provider identifier must use the NIHDI professional naming system"
        issues.append(Issue("value", "Claim.provider.identifier.system", message, "ID-20"))
    path = "Claim.provider.identifier.value"
    value = text(identifier.get("value"))
    if not value:
        issues.append(Issue("required", path, "the provider NIHDI number is required", "AT-3"))
    elif not (len(value) == 11 and value.isascii() and value.isdigit()):
        message = "a provider NIHDI number has 11 digits, no punctuation"
        issues.append(Issue("value", path, message, "ID-6"))
    elif not is_valid_nihdi_professional(value, check_digit=check_digit):
        issues.append(Issue("value", path, "the NIHDI check digits do not match", "ID-7"))
    return issues


def rule_insurer(body: Mapping[str, Any]) -> list[Issue]:
    """ID-13, ID-14: the patient's sickness fund, by its code in the insurer naming system.

    The code is the union's (``100``..``900``) or an individual fund's within its union's hundred
    (``306``) [A]; ``000``, ``700`` or ``800`` name no union.
    """
    identifier, issues = _identifier(body, "insurer", "insurer (the patient's fund)", "ID-14")
    if identifier is None:
        return issues
    if canonical_system(identifier) != systems.INSURER:
        message = "the insurer must be identified in the insurancenumber naming system"
        issues.append(Issue("value", "Claim.insurer.identifier.system", message, "ID-14"))
    issues.extend(_fund_code(text(identifier.get("value")), "Claim.insurer.identifier.value"))
    patient = obj((obj(body.get("patient")) or {}).get("identifier")) or {}
    assigned = membership_fund(patient)
    if assigned is not None and assigned != identifier.get("value") and not issues:
        message = "the insurer must be the fund that assigned the patient's membership number"
        issues.append(Issue("business-rule", "Claim.insurer.identifier.value", message, "ID-14"))
    return issues


def rule_enterer(body: Mapping[str, Any], *, check_digit: bool = True) -> list[Issue]:
    """BeEattestationClaim ``enterer``: who entered the attestation, by NIHDI number (optional on
    ``POST /fhir/Claim``, where the provider is the one sending it; a message always names it)."""
    reference = obj(body.get("enterer"))
    if reference is None:
        return []
    identifier = obj(reference.get("identifier")) or {}
    value = text(identifier.get("value"))
    if canonical_system(identifier) not in PROVIDER_SYSTEMS or value is None:
        message = "the enterer is named by his NIHDI number"
        return [Issue("required", "Claim.enterer.identifier", message, "AT-3")]
    if not (len(value) == 11 and value.isascii() and value.isdigit()):
        message = "an NIHDI number has 11 digits, no punctuation"
        return [Issue("value", "Claim.enterer.identifier.value", message, "ID-6")]
    if not is_valid_nihdi_professional(value, check_digit=check_digit):
        message = "the NIHDI check digits do not match"
        return [Issue("value", "Claim.enterer.identifier.value", message, "ID-7")]
    return []
