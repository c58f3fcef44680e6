"""The quick structure walk (fhir_profiles/structure_precheck.py, issue 18) never accepts what the
fhir.resources model refuses: checked on the guides' shapes and on generated variations of them
(values replaced by other JSON, elements removed or added, nulls, wrong types, unknown names).
It must also recognise the ordinary valid bodies, or it saves nothing."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from fhir.resources.R4B.medicationdispense import MedicationDispense
from fhir.resources.R4B.medicationrequest import MedicationRequest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from fhir_profiles.structure import structure_issues
from fhir_profiles.structure_precheck import surely_valid
from gateway.demo_data import prescriptions
from tests.dispenses.factories import dispense
from tests.fhir_profiles import guide_examples as guide
from tests.fhir_profiles.factories import medication_request

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def examples() -> list[tuple[type[BaseModel], dict[str, Any]]]:
    found: list[tuple[type[BaseModel], dict[str, Any]]] = [
        (MedicationRequest, medication_request(now=NOW)),
        (MedicationRequest, guide.guide_prescription(NOW)),
        (MedicationRequest, guide.guide_prescription(NOW, dosage=guide.loading_dose())),
        (MedicationRequest, guide.guide_prescription(NOW, dosage=guide.daily_for_three_months(1))),
        (
            MedicationRequest,
            guide.guide_prescription(
                NOW,
                medication=guide.imported("Some imported product"),
                contained=[guide.practitioner(guide.GP, practitioner_id="pr")],
                requester={"reference": "#pr"},
            ),
        ),
        (MedicationDispense, dispense(rid="BEP0A1B2C3D4")),
        (MedicationDispense, dispense(prescription_id="abc")),
    ]
    found += [(MedicationRequest, body) for _, _, body in prescriptions(NOW)]
    return found


def model_accepts(model: type[BaseModel], body: dict[str, Any]) -> bool:
    try:
        model.model_validate(copy.deepcopy(body))
    # The model's outright failures: see the two "not a crash" tests below.
    except (ValidationError, KeyError, TypeError, AttributeError):
        return False
    return True


@pytest.mark.parametrize(("model", "body"), examples())
def test_ordinary_valid_bodies_take_the_quick_path(
    model: type[BaseModel], body: dict[str, Any]
) -> None:
    assert model_accepts(model, body)
    assert surely_valid(model, body)


# -- generated variations --------------------------------------------------------------------------

NAMES = [
    "resourceType", "id", "extension", "url", "valueString", "valueBoolean", "valueCodeableConcept",
    "system", "value", "code", "display", "coding", "text", "status", "intent", "subject",
    "identifier", "reference", "contained", "start", "end", "unit", "quantity", "timing", "repeat",
    "frequency", "period", "periodUnit", "doseAndRate", "doseQuantity", "_status", "_value",
    "fhir_comments", "medicationCodeableConcept", "medicationReference", "authoredOn", "bogus",
    "whenHandedOver", "authorizingPrescription", "validityPeriod", "asNeededBoolean", "class",
]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.sampled_from(
        [
            "",
            " ",
            "active",
            "order",
            "d",
            "mg",
            "2026-03-02",
            "2026-02-30",
            "2026-03-02T10:00:00",
            "2026-03-02T10:00:00+01:00",
            "2026",
            "urn:x",
            "http://x y",
            "#role",
            "1.5",
            "true",
            "MedicationRequest",
            "Practitioner",
            "PractitionerRole",
            "Medication",
            "Patient",
        ]
    ),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(NAMES), inner),
    max_leaves=6,
)


def paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*path, index))
    return found


def at(body: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        body = body[part]
    return body


@st.composite
def variations(draw: st.DrawFn) -> tuple[type[BaseModel], dict[str, Any]]:
    model, original = draw(st.sampled_from(examples()))
    body = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths(body)))
        target = at(body, path[:-1]) if path else None
        how = draw(st.sampled_from(["replace", "remove", "add"]))
        if how == "replace" and path:
            target[path[-1]] = draw(JSON)
        elif how == "remove" and path and isinstance(target, dict):
            del target[path[-1]]
        else:
            node = at(body, path)
            if isinstance(node, dict):
                node[draw(st.sampled_from(NAMES))] = draw(JSON)
            elif isinstance(node, list):
                node.append(draw(JSON))
    return model, body


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(variations())
def test_what_the_quick_walk_accepts_the_model_accepts(
    case: tuple[type[BaseModel], dict[str, Any]],
) -> None:
    model, body = case
    if surely_valid(model, body):
        assert model_accepts(model, body), body


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(variations())
def test_the_issues_are_the_models(case: tuple[type[BaseModel], dict[str, Any]]) -> None:
    """structure_issues answers as the model alone would have."""
    model, body = case
    expected = [] if model_accepts(model, body) else None
    issues = structure_issues(model, model.__name__, copy.deepcopy(body))
    if expected == []:
        assert issues == []
    else:
        assert issues, "the model refused it: there must be issues"


@pytest.mark.parametrize("kind", ["Foo", None, 5, ""])
def test_a_contained_resource_without_a_known_resource_type_is_an_issue_not_a_crash(
    kind: Any,
) -> None:
    body = medication_request(now=NOW, contained=[{"resourceType": kind, "id": "x"}])
    issues = structure_issues(MedicationRequest, "MedicationRequest", body)
    assert [(i.code, i.expression) for i in issues] == [
        ("structure", "MedicationRequest.contained[0].resourceType")
    ]


def test_a_primitive_extension_that_is_not_an_object_is_an_issue_not_a_crash() -> None:
    """fhir_core raises AttributeError on ``_value: "0"`` (found by the property test above)."""
    body = medication_request(now=NOW)
    body["subject"] = {"identifier": {"_value": "0"}}
    issues = structure_issues(MedicationRequest, "MedicationRequest", body)
    assert [i.code for i in issues] == ["structure"]
