"""What is prescribed and how much: medication, quantity, substitution (RX-3, RX-19..RX-24).

How it is taken (the dosage) is ``rules.dosage``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final

from fhir_profiles import systems
from fhir_profiles._json import blank, canonical_system, items, obj, text
from fhir_profiles.identifiers import is_valid_cnk
from fhir_profiles.issues import Issue

_MR: Final = "MedicationRequest"
_MEDICATION: Final = "MedicationRequest.medicationCodeableConcept"
PRODUCT_SYSTEMS: Final = frozenset({systems.CNK, systems.AMPP, systems.VMP_GROUP})
MAGISTRAL: Final = "magistral"  # code of the BeMedicationType code system (RX-21)


class ProductKind(StrEnum):
    """What a prescription's ``medicationCodeableConcept`` names (RX-3, RX-21, RX-22)."""

    CODED = "coded"  # a CNK, AMPP package or VMP group code (ID-15..ID-17)
    MAGISTRAL = "magistral"  # a free-text recipe (RX-22)
    # [A] A product without a Belgian code, e.g. imported from abroad: the guide's example 04
    # ("Gutron (Import)") names a product system without a code and the product in text.
    IMPORTED = "imported"


def medication_type(concept: Mapping[str, Any]) -> str | None:
    """The code of the BeExtMedicationType extension on medication[x] (RX-21), if any."""
    for ext in items(concept.get("extension")):
        if not isinstance(ext, dict) or ext.get("url") != systems.MEDICATION_TYPE_EXTENSION:
            continue
        for coding in items((obj(ext.get("valueCodeableConcept")) or {}).get("coding")):
            code = text((obj(coding) or {}).get("code"))
            if code:
                return code
    return None


def product_kind(concept: Mapping[str, Any]) -> ProductKind:
    """Which kind of product a medication concept names; the one place that decides it.

    Magistral: the medication type says so, or there is no coding at all (RX-22). Imported: codings
    that name a product system but carry no code. Anything else is a coded product; whether its
    codes are acceptable is ``rule_medication``'s.
    """
    codings = [obj(raw) or {} for raw in items(concept.get("coding"))]
    declared = medication_type(concept)
    if declared == MAGISTRAL or (declared is None and not codings):
        return ProductKind.MAGISTRAL
    if codings and all(
        canonical_system(c) in PRODUCT_SYSTEMS and c.get("code") is None for c in codings
    ):
        return ProductKind.IMPORTED
    return ProductKind.CODED


def rule_medication(body: Mapping[str, Any]) -> list[Issue]:
    """RX-3, RX-21..RX-23, ID-15..ID-17: one medicine, coded (CNK, AMPP, VMP group), magistral, or
    an imported product named in text.

    ``medicationReference`` is refused: the product must travel inside the prescription so that
    the record behind one RID is self-contained (RX-3) and its code can be checked here.
    """
    if body.get("medicationReference") is not None:
        message = "medicationReference is not supported: code the product inline"
        return [Issue("not-supported", f"{_MR}.medicationReference", message, "RX-3")]
    concept = obj(body.get("medicationCodeableConcept"))
    if concept is None:
        return [Issue("required", _MEDICATION, "the medication is required", "RX-19")]
    codings = items(concept.get("coding"))
    kind = product_kind(concept)
    if kind is ProductKind.MAGISTRAL:
        declared = medication_type(concept) is not None
        return _magistral_issues(concept, codings, declared=declared)
    if kind is ProductKind.IMPORTED:
        return _imported_issues(concept, codings)
    if not codings:
        message = "a CNK, AMPP or VMP group coding is required"
        return [Issue("required", f"{_MEDICATION}.coding", message, "RX-19")]
    issues: list[Issue] = []
    for i, raw in enumerate(codings):
        coding = obj(raw) or {}
        path = f"{_MEDICATION}.coding[{i}]"
        system, code = canonical_system(coding), text(coding.get("code"))
        if system not in PRODUCT_SYSTEMS:
            message = "the medication must be coded with CNK, AMPP package or VMP group"
            issues.append(Issue("code-invalid", f"{path}.system", message, "RX-19"))
        elif not code:
            issues.append(
                Issue("required", f"{path}.code", "the product code is required", "RX-19")
            )
        elif system == systems.CNK and not is_valid_cnk(code):
            issues.append(Issue("value", f"{path}.code", "a CNK code has 7 digits", "ID-15"))
        if i > 0:
            message = "one medicine per prescription: give exactly one product coding"
            issues.append(Issue("business-rule", path, message, "RX-3"))
    return issues


def _imported_issues(concept: Mapping[str, Any], codings: list[Any]) -> list[Issue]:
    """[A] A product without a Belgian code is named in text, one product per prescription (RX-3)."""
    issues = [
        Issue(
            "business-rule",
            f"{_MEDICATION}.coding[{i}]",
            "one medicine per prescription: give exactly one product coding",
            "RX-3",
        )
        for i in range(1, len(codings))
    ]
    if blank(concept.get("text")):
        message = "a product without a code needs its name in text (or give its code)"
        issues.append(Issue("required", f"{_MEDICATION}.text", message, "RX-19"))
    return issues


def _magistral_issues(
    concept: Mapping[str, Any], codings: list[Any], *, declared: bool
) -> list[Issue]:
    """RX-22: a magistral preparation is a free-text recipe, never a coded product.

    ``declared``: the medication type extension says magistral; otherwise the absence of any
    coding made this the magistral path, and the message says what else was possible.
    """
    issues: list[Issue] = []
    for i, raw in enumerate(codings):
        path = f"{_MEDICATION}.coding[{i}]"
        if canonical_system(obj(raw) or {}) == systems.CNK:
            message = "a magistral preparation cannot carry a CNK code"
            issues.append(Issue("business-rule", f"{path}.code", message, "RX-22"))
        else:
            message = "a magistral preparation is described by its text, not coded"
            issues.append(Issue("business-rule", path, message, "RX-22"))
    if blank(concept.get("text")):
        message = (
            "a magistral preparation needs its recipe in text"
            if declared
            else "code the product (CNK, AMPP, VMP group) or give a magistral recipe in text"
        )
        issues.append(Issue("required", f"{_MEDICATION}.text", message, "RX-22"))
    return issues


def rule_quantity(body: Mapping[str, Any]) -> list[Issue]:
    """RX-24: the number of packages, when given, is a JSON number above 0 (default 1 package)."""
    quantity = obj((obj(body.get("dispenseRequest")) or {}).get("quantity"))
    if quantity is None:
        return []
    value = quantity.get("value")
    path = f"{_MR}.dispenseRequest.quantity.value"
    if value is None:
        return [Issue("required", path, "the quantity needs a value", "RX-24")]
    # fhir.resources coerces the string "2" into a decimal; JSON FHIR wants a number.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return [Issue("value", path, "the quantity must be a number", "RX-24")]
    if value <= 0:
        return [Issue("value", path, "the quantity must be greater than 0", "RX-24")]
    return []


def rule_substitution(body: Mapping[str, Any]) -> list[Issue]:
    """RX-19: ``substitution.allowed[x]`` is boolean only (JSON true/false, no coded reason)."""
    substitution = obj(body.get("substitution"))
    if substitution is None:
        return []
    if substitution.get("allowedCodeableConcept") is not None:
        path = f"{_MR}.substitution.allowedCodeableConcept"
        return [Issue("value", path, "substitution.allowed must be a boolean", "RX-19")]
    allowed = substitution.get("allowedBoolean")
    # fhir.resources coerces "yes" and 1 into booleans; JSON FHIR wants true or false.
    if allowed is not None and not isinstance(allowed, bool):
        path = f"{_MR}.substitution.allowedBoolean"
        return [Issue("value", path, "substitution.allowed must be true or false", "RX-19")]
    return []
