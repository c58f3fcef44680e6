"""The eAttest claim profile, rule by rule (``fhir_profiles.claim``; domain AT-2..AT-7, ID-1..ID-18).

Each violation is one issue with the element's FHIRPath and the rule id; none echoes a value.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fhir_profiles import systems
from fhir_profiles.claim import ValidatedClaim, validate_cancel, validate_claim
from fhir_profiles.rules.claim_codes import ATTESTATION, union_of
from tests.claims.factories import JAN, claim, item, with_override

# The factories date claims at the moment they are built, so each check runs at its own now: a
# module-level clock falls behind when a long suite reaches this module minutes after import.


def issues_of(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    result = validate_claim(body, now=datetime.now(UTC))
    assert isinstance(result, list), "expected violations"
    return [(i.expression, i.rule, i.code) for i in result]


def test_a_valid_claim_is_normalised() -> None:
    body = claim(patient="85.07.30-033.28")
    body["provider"]["identifier"]["system"] = (
        "https://www.ehealth.fgov.be/standards/fhir/NamingSystem/nihdi-practitioner"
    )
    for element in ("status", "use", "type"):
        body.pop(element)
    before = copy.deepcopy(body)
    checked = validate_claim(body, now=datetime.now(UTC))
    assert isinstance(checked, ValidatedClaim)
    assert body == before  # never mutated
    resource = checked.resource
    assert resource["patient"]["identifier"] == {"system": systems.SSIN, "value": JAN}
    assert resource["provider"]["identifier"]["system"] == systems.NIHDI_PROFESSIONAL
    assert (resource["status"], resource["use"]) == ("active", "claim")
    assert resource["type"]["coding"][0]["code"] == "professional"
    assert resource["priority"]["coding"][0]["code"] == "stat"
    assert checked.fund_code == "100"
    assert [(s.code, s.count) for s in checked.services] == [("101032", 1)]
    assert not checked.duplicate_override
    override = validate_claim(with_override(claim()), now=datetime.now(UTC))
    assert isinstance(override, ValidatedClaim)
    assert override.duplicate_override


def _set(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    target: Any = body
    parts = path.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    last = parts[-1]
    if value is None:
        target.pop(last)
    elif last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return body


FUTURE = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()


@pytest.mark.parametrize(
    ("path", "value", "expression", "rule"),
    [
        (
            "identifier",
            [{"system": ATTESTATION, "value": "100-1-1"}],
            "Claim.identifier[0]",
            "AT-3",
        ),
        ("status", "cancelled", "Claim.status", "AT-3"),
        ("use", "preauthorization", "Claim.use", "AT-3"),
        ("subType", None, "Claim.subType", "AT-2"),
        ("subType.coding.0.code", "surgery", "Claim.subType.coding[0].code", "AT-2"),
        ("created", "2999-01-01", "Claim.created", "AT-3"),
        ("patient.identifier.value", "85073003329", "Claim.patient.identifier.value", "ID-2"),
        ("patient.identifier.value", "8507300332", "Claim.patient.identifier.value", "ID-1"),
        ("patient.identifier.system", "urn:x", "Claim.patient.identifier.system", "ID-20"),
        ("provider.identifier.value", "19234012004", "Claim.provider.identifier.value", "ID-7"),
        ("provider.identifier.value", "19234011", "Claim.provider.identifier.value", "ID-6"),
        ("insurer.identifier.value", "700", "Claim.insurer.identifier.value", "ID-13"),
        ("insurer.identifier.value", "1000", "Claim.insurer.identifier.value", "ID-13"),
        ("insurer.identifier.system", "urn:x", "Claim.insurer.identifier.system", "ID-14"),
        ("item", [], "Claim.item", "AT-3"),
        (
            "item.0.productOrService.coding.0.code",
            "10103",
            "Claim.item[0].productOrService.coding[0].code",
            "ID-18",
        ),
        (
            "item.0.productOrService.coding.0.system",
            "urn:x",
            "Claim.item[0].productOrService.coding",
            "ID-18",
        ),
        ("item.0.servicedDate", FUTURE, "Claim.item[0].servicedDate", "AT-3"),
        ("item.0.servicedDate", None, "Claim.item[0].servicedDate", "AT-3"),
        ("item.0.quantity.value", 1.5, "Claim.item[0].quantity.value", "AT-3"),
        ("item.0.quantity", None, "Claim.item[0].quantity", "AT-3"),
        ("item.0.unitPrice.currency", "USD", "Claim.item[0].unitPrice.currency", "AT-3"),
        ("item.0.unitPrice.value", -1, "Claim.item[0].unitPrice.value", "AT-3"),
        ("item.0.net.value", 31.0, "Claim.item[0].net.value", "AT-3"),
        ("item.0.net", None, "Claim.item[0].net", "AT-3"),
        ("total.value", 99.0, "Claim.total.value", "AT-3"),
        ("total", None, "Claim.total", "AT-3"),
        (
            "extension",
            [{"url": "urn:ehealth-gateway:extension:duplicate-override", "valueString": "yes"}],
            "Claim.extension[0]",
            "AT-7",
        ),
    ],
)
def test_each_rule(path: str, value: Any, expression: str, rule: str) -> None:
    found = issues_of(_set(claim(), path, value))
    assert (expression, rule) in [(e, r) for e, r, _ in found], found


def test_every_violation_is_reported_at_once() -> None:
    body = claim(items=[item(serviced=FUTURE), item("12", count=0)])
    body["insurer"]["identifier"]["value"] = "800"
    expressions = {e for e, _, _ in issues_of(body)}
    assert {
        "Claim.insurer.identifier.value",
        "Claim.item[0].servicedDate",
        "Claim.item[1].productOrService.coding[0].code",
        "Claim.item[1].quantity.value",
    } <= expressions


def test_structure_first() -> None:
    # FHIR R4 structure is reported first, alone; the eAttest rules need a well-formed Claim.
    assert issues_of(claim(item=[{"sequence": "one"}], insurer="800")) == [
        ("Claim.item[0].productOrService", "", "required"),
        ("Claim.item[0].sequence", "", "structure"),
    ]


def test_sums_are_exact_decimals() -> None:
    body = claim(items=[item(price=0.1), item("101076", price=0.2)])
    body["total"]["value"] = 0.3
    assert isinstance(validate_claim(body, now=datetime.now(UTC)), ValidatedClaim)


def test_a_pseudonymised_patient_cannot_be_attested() -> None:
    body = claim()
    body["patient"]["identifier"]["_value"] = {
        "extension": [{"url": systems.PSEUDONYMIZATION_EXTENSION, "valueString": "x"}]
    }
    assert ("Claim.patient.identifier.value", "AT-3", "business-rule") in issues_of(body)


def test_no_value_is_echoed() -> None:
    body = claim(patient="85073003329")
    result = validate_claim(body, now=datetime.now(UTC))
    assert isinstance(result, list)
    assert all("85073003329" not in i.diagnostics for i in result)


@pytest.mark.parametrize(
    ("parameter", "expected"),
    [
        ({"name": "reason", "valueCode": "A"}, "A"),
        (
            {
                "name": "reason",
                "valueCoding": {
                    "system": "https://www.ehealth.fgov.be/standards/fhir/eattestation/CodeSystem/be-cs-eattestation-cancel-reason",
                    "code": "G",
                },
            },
            "G",
        ),
        ({"name": "reason", "valueCoding": {"code": "D"}}, "D"),
    ],
)
def test_cancel_reasons(parameter: dict[str, Any], expected: str) -> None:
    assert validate_cancel({"resourceType": "Parameters", "parameter": [parameter]}) == expected


@pytest.mark.parametrize(
    ("body", "expression"),
    [
        ({"resourceType": "Parameters"}, "Parameters.parameter"),
        (
            {"resourceType": "Parameters", "parameter": [{"name": "reason", "valueCode": "H"}]},
            "Parameters.parameter[0].valueCode",
        ),
        (
            {
                "resourceType": "Parameters",
                "parameter": [{"name": "reason", "valueCoding": {"system": "urn:x", "code": "A"}}],
            },
            "Parameters.parameter[0].valueCoding.system",
        ),
        ({"resourceType": "Claim"}, "Parameters"),
    ],
)
def test_cancel_violations(body: dict[str, Any], expression: str) -> None:
    result = validate_cancel(body)
    assert isinstance(result, list)
    assert result[0].expression == expression


def test_union_of() -> None:
    assert [union_of(c) for c in ("100", "306", "931")] == ["100", "300", "900"]
