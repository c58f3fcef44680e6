"""The Belgian prescription profile on create: one test per rule, named after its rule id."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from fhir_profiles import Issue, ValidatedPrescription, systems, validate_medication_request
from fhir_profiles.rules.product import ProductKind, product_kind
from tests.fhir_profiles.factories import NIHDI, SSIN, medication_request
from tests.fhir_profiles.guide_examples import (
    GP,
    OTHER_GP,
    PHYSIOTHERAPIST,
    ROLE_ID,
    ampp,
    daily_for_three_months,
    dose_mg,
    every_other_day,
    guide_prescription,
    imported,
    loading_dose,
    practitioner,
    practitioner_role,
    vmp_group,
)

NOW = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
MEDICATION_TYPES = (
    "https://www.ehealth.fgov.be/standards/fhir/terminology/CodeSystem/BeMedicationType"
)


def medication_type(code: str) -> dict[str, Any]:
    """The BeExtMedicationType extension (RX-21) with ``code``."""
    coding = {"system": MEDICATION_TYPES, "code": code}
    return {"url": systems.MEDICATION_TYPE_EXTENSION, "valueCodeableConcept": {"coding": [coding]}}


MAGISTRAL_TYPE = medication_type("magistral")
VALIDITY = "MedicationRequest.dispenseRequest.validityPeriod"
CODING_0 = "MedicationRequest.medicationCodeableConcept.coding[0]"


def body(**overrides: Any) -> dict[str, Any]:
    return medication_request(now=NOW, **overrides)


def accepted(
    resource: dict[str, Any], *, now: datetime = NOW, **kwargs: Any
) -> ValidatedPrescription:
    result = validate_medication_request(resource, now=now, **kwargs)
    assert isinstance(result, ValidatedPrescription), result
    return result


def only_issue(resource: dict[str, Any], *, now: datetime = NOW, **kwargs: Any) -> Issue:
    result = validate_medication_request(resource, now=now, **kwargs)
    assert isinstance(result, list), result
    assert len(result) == 1, result
    return result[0]


def with_path(resource: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Set a dotted path (``dispenseRequest.validityPeriod.end``); ``None`` removes it."""
    *parents, last = path.split(".")
    node = resource
    for key in parents:
        node = node.setdefault(key, {})
    if value is None:
        node.pop(last, None)
    else:
        node[last] = value
    return resource


def medication(*codings: tuple[str, str], **concept: Any) -> dict[str, Any]:
    return {"coding": [{"system": s, "code": c} for s, c in codings], **concept}


# --- the happy path and normalisation -----------------------------------------------------------


def test_factory_body_is_a_valid_prescription() -> None:
    result = accepted(body())
    assert result.patient_ssin == SSIN
    assert result.requester_nihdi == NIHDI
    assert result.authored_on == NOW
    assert result.validity_start == date(2025, 3, 10)
    assert result.validity_end == date(2025, 6, 9)
    assert result.resource["status"] == "active"


def test_the_input_is_not_mutated() -> None:
    """The caller's body stays as sent; the RID is appended to the profile's own copy."""
    sent = body(status=None, identifier=[{"system": "urn:ehr:rx", "value": "42"}])
    before = copy.deepcopy(sent)
    result = accepted(sent)
    assert sent == before
    assert result.resource["identifier"] is not sent["identifier"]


def test_structure_errors_have_a_fhirpath_and_never_echo_the_value() -> None:
    resource = body()
    resource["dispenseRequest"]["quantity"]["value"] = "85073003328x"
    issue = only_issue(resource)
    assert issue.code == "structure"
    assert issue.expression == "MedicationRequest.dispenseRequest.quantity.value"
    assert "85073003328" not in issue.diagnostics


def test_structure_unknown_element_refused() -> None:
    issue = only_issue(body(prescriptionDate="2025-03-10"))
    assert (issue.code, issue.expression) == ("structure", "MedicationRequest.prescriptionDate")


def test_structure_other_resource_type_refused() -> None:
    issue = only_issue(body(resourceType="Patient"))
    assert (issue.code, issue.expression) == ("structure", "MedicationRequest")


def test_structure_now_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError):
        validate_medication_request(body(), now=datetime(2025, 3, 10, 9, 0))


# --- status and intent (RX-6, RX-19) ------------------------------------------------------------


def test_RX_6_absent_status_becomes_active() -> None:
    assert accepted(body(status=None)).resource["status"] == "active"


@pytest.mark.parametrize("status", ["draft", "completed", "cancelled"])
def test_RX_6_status_on_create_must_be_active(status: str) -> None:
    issue = only_issue(body(status=status))
    assert (issue.code, issue.expression, issue.rule) == (
        "value",
        "MedicationRequest.status",
        "RX-6",
    )


def test_RX_19_intent_must_be_order() -> None:
    issue = only_issue(body(intent="plan"))
    assert (issue.code, issue.expression, issue.rule) == (
        "value",
        "MedicationRequest.intent",
        "RX-19",
    )


# --- identifier (RX-5) --------------------------------------------------------------------------


@pytest.mark.parametrize("system", [systems.RID, systems.LEGACY_RID])
def test_RX_5_client_cannot_send_a_rid(system: str) -> None:
    own = {"system": "urn:ehr:rx", "value": "42"}
    issue = only_issue(body(identifier=[own, {"system": system, "value": "BEP1LASIX001"}]))
    assert (issue.code, issue.expression, issue.rule) == (
        "business-rule",
        "MedicationRequest.identifier[1]",
        "RX-5",
    )


def test_RX_5_client_may_send_its_own_identifiers() -> None:
    own = {"system": "urn:ehr:rx", "value": "42"}
    assert accepted(body(identifier=[own])).resource["identifier"] == [own]


# --- subject: SSIN (ID-1..ID-5, ID-20..ID-22) ---------------------------------------------------


def test_RX_19_missing_subject_is_required() -> None:
    issue = only_issue(body(subject=None))
    assert (issue.code, issue.expression) == ("required", "MedicationRequest.subject")


def test_RX_19_subject_needs_an_ssin_identifier() -> None:
    issue = only_issue(body(subject={"reference": "Patient/1"}))
    assert (issue.code, issue.expression, issue.rule) == (
        "required",
        "MedicationRequest.subject.identifier",
        "RX-19",
    )


def test_ID_20_subject_identifier_must_use_the_ssin_system() -> None:
    subject = {"identifier": {"system": systems.NIHDI, "value": SSIN}}
    issue = only_issue(body(subject=subject))
    assert (issue.code, issue.expression, issue.rule) == (
        "value",
        "MedicationRequest.subject.identifier.system",
        "ID-20",
    )


def test_ID_1_subject_ssin_needs_eleven_digits() -> None:
    issue = only_issue(body(ssin="8507300332"))
    assert (issue.code, issue.expression, issue.rule) == (
        "value",
        "MedicationRequest.subject.identifier.value",
        "ID-1",
    )


def test_ID_2_subject_ssin_check_digits() -> None:
    issue = only_issue(body(ssin="85073003329"))
    assert (issue.code, issue.expression, issue.rule) == (
        "value",
        "MedicationRequest.subject.identifier.value",
        "ID-2",
    )
    assert "85073003329" not in issue.diagnostics


def test_ID_4_subject_bis_number_accepted() -> None:
    assert accepted(body(ssin="85473003317")).patient_ssin == "85473003317"


def test_ID_5_subject_printed_ssin_stored_as_digits() -> None:
    result = accepted(body(ssin="85.07.30-033.28"))
    assert result.patient_ssin == SSIN
    assert result.resource["subject"]["identifier"]["value"] == SSIN


def test_ID_22_legacy_ssin_system_normalised() -> None:
    subject = {"identifier": {"system": systems.LEGACY_SSIN, "value": SSIN}}
    result = accepted(body(subject=subject))
    assert result.resource["subject"]["identifier"]["system"] == systems.SSIN


def test_ID_21_pseudonymised_ssin_skips_the_check_digits() -> None:
    pseudonym = "urn:be:fgov:ehealth:pseudo:v2:BAEeFgg-BNMHWl1EQ3T8Ox4unll26hx"
    extension = {
        "url": systems.PSEUDONYMIZATION_EXTENSION,
        "extension": [{"url": "format", "valueCode": "direct"}],
    }
    identifier = {"system": systems.SSIN, "value": pseudonym, "_value": {"extension": [extension]}}
    result = accepted(body(subject={"identifier": identifier}))
    assert result.patient_ssin == ""
    assert result.resource["subject"]["identifier"]["value"] == pseudonym


def test_ID_21_without_the_extension_a_pseudonym_is_refused() -> None:
    identifier = {"system": systems.SSIN, "value": "urn:be:fgov:ehealth:pseudo:v2:x"}
    issue = only_issue(body(subject={"identifier": identifier}))
    assert (issue.code, issue.rule) == ("value", "ID-1")


# --- requester: NIHDI (ID-6..ID-8, ID-22) -------------------------------------------------------


def test_RX_19_missing_requester_is_required() -> None:
    issue = only_issue(body(requester=None))
    assert (issue.code, issue.expression, issue.rule) == (
        "required",
        "MedicationRequest.requester",
        "RX-19",
    )


def test_RX_19_requester_needs_an_nihdi_identifier() -> None:
    issue = only_issue(body(requester={"display": "Dr. Somebody"}))
    assert (issue.code, issue.expression) == ("required", "MedicationRequest.requester.identifier")


def test_ID_20_requester_identifier_must_use_an_nihdi_system() -> None:
    requester = {"identifier": {"system": systems.NIHDI_ORGANIZATION, "value": NIHDI}}
    issue = only_issue(body(requester=requester))
    assert (issue.code, issue.expression, issue.rule) == (
        "value",
        "MedicationRequest.requester.identifier.system",
        "ID-20",
    )


@pytest.mark.parametrize("system", [systems.LEGACY_NIHDI_PRACTITIONER, systems.NIHDI])
def test_ID_22_legacy_and_generic_nihdi_systems_accepted(system: str) -> None:
    result = accepted(body(requester={"identifier": {"system": system, "value": NIHDI}}))
    assert result.resource["requester"]["identifier"]["system"] == systems.NIHDI_PROFESSIONAL


@pytest.mark.parametrize("nihdi", ["19234011", "1923401100", "1-923401-10-04"])
def test_ID_6_prescriber_needs_eleven_digits(nihdi: str) -> None:
    issue = only_issue(body(nihdi=nihdi))
    assert (issue.code, issue.expression, issue.rule) == (
        "value",
        "MedicationRequest.requester.identifier.value",
        "ID-6",
    )


def test_ID_7_prescriber_check_digits() -> None:
    issue = only_issue(body(nihdi="19234012004"))
    assert (issue.code, issue.expression, issue.rule) == (
        "value",
        "MedicationRequest.requester.identifier.value",
        "ID-7",
    )


def test_ID_7_check_digit_behind_a_flag() -> None:
    result = accepted(body(nihdi="19234012004"), nihdi_check_digit=False)
    assert result.requester_nihdi == "19234012004"


def test_ID_8_physiotherapist_cannot_prescribe() -> None:
    issue = only_issue(body(nihdi="54263481527"))
    assert (issue.code, issue.expression, issue.rule) == (
        "business-rule",
        "MedicationRequest.requester.identifier.value",
        "ID-8",
    )


# --- requester in the guide's shapes: contained Practitioner / PractitionerRole (RX-19) ----------


def guide(**overrides: Any) -> dict[str, Any]:
    return guide_prescription(NOW, **overrides)


def test_RX_19_guide_contained_practitionerrole_is_the_requester() -> None:
    result = accepted(guide())
    assert result.requester_nihdi == GP
    requester = result.resource["requester"]
    assert requester["reference"] == f"#{ROLE_ID}"
    # The NIHDI it resolved to is added, in the professional system, for every reader (ID-20).
    assert requester["identifier"] == {"system": systems.NIHDI_PROFESSIONAL, "value": GP}
    assert result.resource["contained"] == [practitioner_role(GP)]


def test_RX_19_contained_practitioner_is_the_requester_ssin_ignored() -> None:
    resource = guide(
        contained=[practitioner(GP, practitioner_id="dr")], requester={"reference": "#dr"}
    )
    assert accepted(resource).requester_nihdi == GP


def test_RX_19_practitionerrole_may_carry_the_nihdi_itself() -> None:
    role = practitioner_role(GP)
    role["identifier"] = [{"system": systems.NIHDI_PROFESSIONAL, "value": GP}]
    del role["practitioner"]
    assert accepted(guide(contained=[role])).requester_nihdi == GP


def test_RX_19_practitionerrole_may_reference_a_contained_practitioner() -> None:
    role = practitioner_role(GP)
    role["practitioner"] = {"reference": "#dr"}
    resource = guide(contained=[role, practitioner(GP, practitioner_id="dr")])
    assert accepted(resource).requester_nihdi == GP


@pytest.mark.parametrize(
    "system",
    [
        systems.NIHDI,
        systems.NIHDI_PROFESSIONAL,
        systems.LEGACY_NIHDI_PRACTITIONER,
        "https://www.ehealth.fgov.be/standards/fhir/NamingSystem/nihdi",
        "https://www.ehealth.fgov.be/standards/fhir/NamingSystem/nihdi-professional",
        "https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/nihdi-practitioner",
    ],
)
def test_ID_22_contained_nihdi_in_any_nihdi_system_legacy_ones_emitted_canonical(
    system: str,
) -> None:
    result = accepted(guide(contained=[practitioner_role(GP, system=system)]))
    assert result.requester_nihdi == GP
    emitted = result.resource["contained"][0]["practitioner"]["identifier"]["system"]
    assert emitted in (systems.NIHDI, systems.NIHDI_PROFESSIONAL)


def test_RX_19_requester_identifier_and_reference_must_agree() -> None:
    agreeing = {"reference": f"#{ROLE_ID}", "identifier": {"system": systems.NIHDI, "value": GP}}
    assert accepted(guide(requester=agreeing)).requester_nihdi == GP
    other = {"reference": f"#{ROLE_ID}", "identifier": {"system": systems.NIHDI, "value": OTHER_GP}}
    issue = only_issue(guide(requester=other))
    assert (issue.code, issue.expression, issue.rule) == (
        "invariant",
        "MedicationRequest.requester.identifier.value",
        "RX-19",
    )


@pytest.mark.parametrize(
    ("requester", "contained", "code", "expression"),
    [
        ({"reference": "#nobody"}, "role", "invariant", "MedicationRequest.requester.reference"),
        ({"reference": "#"}, "role", "invariant", "MedicationRequest.requester.reference"),
        (
            {"reference": "Practitioner/123", "identifier": {"system": systems.NIHDI, "value": GP}},
            "role",
            "not-supported",
            "MedicationRequest.requester.reference",
        ),
        (
            {"reference": "https://hub.example/fhir/PractitionerRole/9"},
            "role",
            "not-supported",
            "MedicationRequest.requester.reference",
        ),
        (
            {"reference": f"#{ROLE_ID}"},
            "twice",
            "invariant",
            "MedicationRequest.requester.reference",
        ),
        ({"reference": "#org"}, "organization", "value", "MedicationRequest.requester.reference"),
        (
            {"reference": f"#{ROLE_ID}"},
            "no-nihdi",
            "required",
            "MedicationRequest.contained[0].practitioner.identifier",
        ),
        (
            {"reference": f"#{ROLE_ID}"},
            "external-practitioner",
            "not-supported",
            "MedicationRequest.contained[0].practitioner.reference",
        ),
        (
            {"reference": "#dr"},
            "practitioner-ssin-only",
            "required",
            "MedicationRequest.contained[0].identifier",
        ),
        (
            {"reference": f"#{ROLE_ID}"},
            "disagreeing",
            "invariant",
            "MedicationRequest.contained[0].practitioner.identifier.value",
        ),
    ],
)
def test_RX_19_requester_shapes_the_gateway_cannot_check_are_refused(
    requester: dict[str, Any], contained: str, code: str, expression: str
) -> None:
    role = practitioner_role(GP)
    variants: dict[str, list[dict[str, Any]]] = {
        "role": [role],
        "twice": [role, practitioner_role(OTHER_GP)],
        "organization": [{"resourceType": "Organization", "id": "org", "name": "Group practice"}],
        "no-nihdi": [
            {**role, "practitioner": {"identifier": {"system": systems.SSIN, "value": SSIN}}}
        ],
        "external-practitioner": [{**role, "practitioner": {"reference": "Practitioner/7"}}],
        "practitioner-ssin-only": [
            {
                "resourceType": "Practitioner",
                "id": "dr",
                "identifier": [{"system": systems.SSIN, "value": SSIN}],
            }
        ],
        "disagreeing": [
            {**role, "identifier": [{"system": systems.NIHDI_PROFESSIONAL, "value": OTHER_GP}]}
        ],
    }
    issue = only_issue(guide(requester=requester, contained=variants[contained]))
    assert (issue.code, issue.expression, issue.rule) == (code, expression, "RX-19")


def test_ID_7_ID_8_contained_number_is_judged_where_it_is() -> None:
    wrong_check = GP[:6] + "00" + GP[8:]  # no check digit series yields 00
    issue = only_issue(guide(contained=[practitioner_role(wrong_check)]))
    path = "MedicationRequest.contained[0].practitioner.identifier.value"
    assert (issue.code, issue.expression, issue.rule) == ("value", path, "ID-7")
    issue = only_issue(guide(contained=[practitioner_role(PHYSIOTHERAPIST)]))
    assert (issue.code, issue.expression, issue.rule) == ("business-rule", path, "ID-8")


# --- authoredOn (RX-19, RX-10) ------------------------------------------------------------------


def test_RX_19_authored_on_is_required() -> None:
    issue = only_issue(body(authoredOn=None))
    assert (issue.code, issue.expression, issue.rule) == (
        "required",
        "MedicationRequest.authoredOn",
        "RX-19",
    )


@pytest.mark.parametrize("authored", ["2025-03-10", "2025-03"])
def test_RX_19_authored_on_needs_time_and_zone(authored: str) -> None:
    issue = only_issue(body(authoredOn=authored))
    assert (issue.code, issue.expression, issue.rule) == (
        "value",
        "MedicationRequest.authoredOn",
        "RX-19",
    )


def test_RX_10_authored_on_not_in_the_future() -> None:
    issue = only_issue(medication_request(now=NOW + timedelta(minutes=6)))
    assert (issue.code, issue.expression, issue.rule) == (
        "business-rule",
        "MedicationRequest.authoredOn",
        "RX-10",
    )


def test_RX_10_five_minutes_of_clock_skew_tolerated() -> None:
    accepted(medication_request(now=NOW + timedelta(minutes=5)))


# --- medication (RX-3, RX-21..RX-23, ID-15..ID-17) ----------------------------------------------


def test_RX_3_medication_reference_refused() -> None:
    resource = body(medicationCodeableConcept=None, medicationReference={"reference": "#med"})
    issue = only_issue(resource)
    assert (issue.code, issue.expression, issue.rule) == (
        "not-supported",
        "MedicationRequest.medicationReference",
        "RX-3",
    )


def test_RX_3_only_one_medication_choice() -> None:
    issue = only_issue(body(medicationReference={"reference": "#med"}))
    assert (issue.code, issue.expression) == ("structure", "MedicationRequest.medication[x]")


def test_RX_19_medication_is_required() -> None:
    issue = only_issue(body(medicationCodeableConcept=None))
    assert (issue.code, issue.expression) == ("required", "MedicationRequest.medication[x]")


def test_RX_3_one_medicine_per_prescription() -> None:
    concept = medication((systems.CNK, "1439562"), (systems.CNK, "2055218"))
    issue = only_issue(body(medicationCodeableConcept=concept))
    assert (issue.code, issue.expression, issue.rule) == (
        "business-rule",
        "MedicationRequest.medicationCodeableConcept.coding[1]",
        "RX-3",
    )


def test_RX_19_unknown_coding_system_refused() -> None:
    concept = medication(("http://snomed.info/sct", "387207008"))
    issue = only_issue(body(medicationCodeableConcept=concept))
    assert (issue.code, issue.expression, issue.rule) == (
        "code-invalid",
        f"{CODING_0}.system",
        "RX-19",
    )


@pytest.mark.parametrize("cnk", ["143956", "14395620", "143956A"])
def test_ID_15_cnk_has_seven_digits(cnk: str) -> None:
    issue = only_issue(body(cnk=cnk))
    assert (issue.code, issue.expression, issue.rule) == ("value", f"{CODING_0}.code", "ID-15")


def test_ID_15_legacy_cnk_system_normalised() -> None:
    concept = medication((systems.LEGACY_CNK, "1439562"))
    result = accepted(body(medicationCodeableConcept=concept))
    coding = result.resource["medicationCodeableConcept"]["coding"][0]
    assert coding == {"system": systems.CNK, "code": "1439562"}


def test_ID_16_RX_23_vmp_group_substance_prescription_accepted() -> None:
    concept = medication((systems.VMP_GROUP, "3889"), text="bisoprolol oraal 2,5 mg")
    accepted(body(medicationCodeableConcept=concept))


def test_ID_17_ampp_package_accepted() -> None:
    accepted(body(medicationCodeableConcept=medication((systems.AMPP, "067663-02"))))


def test_RX_22_magistral_text_only_accepted() -> None:
    concept = {"text": "Acidum salicylicum 2 g, vaselinum album q.s. ad 100 g"}
    accepted(body(medicationCodeableConcept=concept))


def test_RX_22_magistral_declared_by_extension_accepted() -> None:
    concept = {"extension": [MAGISTRAL_TYPE], "text": "Ureum 10 g, lanette q.s. ad 100 g"}
    accepted(body(medicationCodeableConcept=concept))


@pytest.mark.parametrize(
    "concept",
    [{"extension": [MAGISTRAL_TYPE]}, {"text": " "}, {"extension": [MAGISTRAL_TYPE], "text": "  "}],
)
def test_RX_22_magistral_requires_text(concept: dict[str, Any]) -> None:
    issue = only_issue(body(medicationCodeableConcept=concept))
    assert (issue.code, issue.expression, issue.rule) == (
        "required",
        "MedicationRequest.medicationCodeableConcept.text",
        "RX-22",
    )


def test_RX_22_cnk_on_a_magistral_prescription_refused() -> None:
    concept = medication((systems.CNK, "1439562"), extension=[MAGISTRAL_TYPE], text="Ureum 10 g")
    issue = only_issue(body(medicationCodeableConcept=concept))
    assert (issue.code, issue.expression, issue.rule) == (
        "business-rule",
        f"{CODING_0}.code",
        "RX-22",
    )


def test_RX_21_non_magistral_type_needs_a_coding() -> None:
    concept = {"extension": [medication_type("medicinal-product")], "text": "Lasix 40 mg"}
    issue = only_issue(body(medicationCodeableConcept=concept))
    assert (issue.code, issue.expression, issue.rule) == (
        "required",
        "MedicationRequest.medicationCodeableConcept.coding",
        "RX-19",
    )


def test_RX_19_guide_ampp_and_vmp_group_products_accepted() -> None:
    for concept in (
        ampp("081352-03", "Furosemide 40 mg tabl. 50"),
        vmp_group("3889", "bisoprolol"),
    ):
        result = accepted(guide(medication=concept))
        assert result.resource["medicationCodeableConcept"] == concept


def test_RX_19_imported_product_named_in_text_accepted() -> None:
    concept = imported("Midodrine 5 mg 20 tabl. (import)")
    assert product_kind(concept) is ProductKind.IMPORTED
    result = accepted(guide(medication=concept))
    assert result.resource["medicationCodeableConcept"] == concept


def test_RX_19_imported_product_needs_its_name_in_text() -> None:
    concept = {"coding": [{"system": systems.AMPP, "userSelected": False}]}
    issue = only_issue(guide(medication=concept))
    assert (issue.code, issue.expression, issue.rule) == (
        "required",
        "MedicationRequest.medicationCodeableConcept.text",
        "RX-19",
    )


def test_RX_19_codeless_coding_of_an_unknown_system_is_no_import() -> None:
    concept = {"coding": [{"system": "http://snomed.info/sct"}], "text": "Some product"}
    assert product_kind(concept) is ProductKind.CODED
    issue = only_issue(guide(medication=concept))
    assert (issue.code, issue.expression) == ("code-invalid", f"{CODING_0}.system")


# --- dosage (RX-19) -----------------------------------------------------------------------------


@pytest.mark.parametrize("dosage", [None, []])
def test_RX_19_dosage_instruction_required(dosage: list[Any] | None) -> None:
    resource = body()
    resource.pop("dosageInstruction")
    if dosage is not None:
        resource["dosageInstruction"] = dosage
    issue = only_issue(resource)
    assert (issue.code, issue.expression, issue.rule) == (
        "required",
        "MedicationRequest.dosageInstruction",
        "RX-19",
    )


def test_RX_19_each_dosage_needs_text_or_structure() -> None:
    issue = only_issue(body(dosageInstruction=[{"text": "1 a day"}, {"sequence": 2}]))
    assert (issue.code, issue.expression, issue.rule) == (
        "required",
        "MedicationRequest.dosageInstruction[1]",
        "RX-19",
    )


def test_RX_19_structured_dosage_accepted() -> None:
    dosage = {
        "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
        "doseAndRate": [{"doseQuantity": {"value": 2.5, "code": "mg"}}],
    }
    accepted(body(dosageInstruction=[dosage]))


@pytest.mark.parametrize(
    "dosage",
    [
        every_other_day(),
        loading_dose(),
        daily_for_three_months(2.5),
        [{"asNeededBoolean": True, "doseAndRate": [dose_mg(500)]}],
        [{"asNeededCodeableConcept": {"text": "pain"}}],
        [{"patientInstruction": "one tablet with breakfast"}],
        [
            {
                "maxDosePerPeriod": {
                    "numerator": {"value": 4},
                    "denominator": {"value": 1, "unit": "d"},
                }
            }
        ],
    ],
)
def test_RX_19_structured_dosages_without_text_accepted(dosage: list[dict[str, Any]]) -> None:
    result = accepted(guide(dosageInstruction=dosage))
    assert result.resource["dosageInstruction"] == dosage


DOSAGE_0 = "MedicationRequest.dosageInstruction[0]"


@pytest.mark.parametrize(
    ("dosage", "code", "expression"),
    [
        (
            {"timing": {"repeat": {"frequency": 1, "period": 2}}},
            "invariant",
            "timing.repeat.period",
        ),
        ({"timing": {"repeat": {"duration": 30}}}, "invariant", "timing.repeat.duration"),
        (
            {"timing": {"repeat": {"period": 1, "periodUnit": "fortnight"}}},
            "code-invalid",
            "timing.repeat.periodUnit",
        ),
        (
            {"timing": {"repeat": {"period": -1, "periodUnit": "d"}}},
            "invariant",
            "timing.repeat.period",
        ),
        (
            {"timing": {"repeat": {"frequency": 1, "period": "1", "periodUnit": "d"}}},
            "value",
            "timing.repeat.period",
        ),
        (
            {"timing": {"repeat": {"periodMax": 3, "periodUnit": "d"}}},
            "invariant",
            "timing.repeat.periodMax",
        ),
        (
            {"timing": {"repeat": {"when": ["MORN"], "timeOfDay": ["08:00:00"]}}},
            "invariant",
            "timing.repeat.timeOfDay",
        ),
        (
            {"timing": {"repeat": {"when": ["CM"], "offset": 30}}},
            "invariant",
            "timing.repeat.offset",
        ),
        ({"doseAndRate": [{"type": {"text": "ordered"}}]}, "required", "doseAndRate[0]"),
        (
            {"doseAndRate": [{"doseQuantity": {"value": "2", "code": "mg"}}]},
            "value",
            "doseAndRate[0].doseQuantity.value",
        ),
        ({"asNeededBoolean": False}, "required", ""),
    ],
)
def test_RX_19_structured_dosage_must_be_readable(
    dosage: dict[str, Any], code: str, expression: str
) -> None:
    issue = only_issue(guide(dosageInstruction=[dosage]))
    path = f"{DOSAGE_0}.{expression}" if expression else DOSAGE_0
    assert (issue.code, issue.expression, issue.rule) == (code, path, "RX-19")


# --- quantity (RX-24) ---------------------------------------------------------------------------


def test_RX_24_default_quantity_is_one_package() -> None:
    resource = with_path(body(), "dispenseRequest.quantity", None)
    result = accepted(resource)
    assert result.resource["dispenseRequest"]["quantity"] == {"value": 1, "unit": "package"}


# A JSON boolean is already a structure error in fhir.resources; "2" is coerced, hence RX-24.
@pytest.mark.parametrize("value", [0, -1, -0.5, "2"])
def test_RX_24_quantity_must_be_a_positive_number(value: Any) -> None:
    issue = only_issue(with_path(body(), "dispenseRequest.quantity.value", value))
    assert (issue.code, issue.expression, issue.rule) == (
        "value",
        "MedicationRequest.dispenseRequest.quantity.value",
        "RX-24",
    )


# --- validity (RX-10..RX-12) --------------------------------------------------------------------


def test_RX_11_validity_start_required() -> None:
    issue = only_issue(with_path(body(), "dispenseRequest.validityPeriod.start", None))
    assert (issue.code, issue.expression, issue.rule) == ("required", f"{VALIDITY}.start", "RX-11")


def test_RX_11_deferred_start_accepted() -> None:
    result = accepted(with_path(body(), "dispenseRequest.validityPeriod.start", "2025-04-01"))
    assert (result.validity_start, result.validity_end) == (date(2025, 4, 1), date(2025, 6, 9))


def test_RX_11_start_after_the_default_end_needs_an_end() -> None:
    issue = only_issue(with_path(body(), "dispenseRequest.validityPeriod.start", "2025-07-01"))
    assert (issue.code, issue.expression, issue.rule) == (
        "business-rule",
        f"{VALIDITY}.start",
        "RX-11",
    )


def test_RX_12_start_not_before_creation() -> None:
    issue = only_issue(with_path(body(), "dispenseRequest.validityPeriod.start", "2025-03-09"))
    assert (issue.code, issue.expression, issue.rule) == (
        "business-rule",
        f"{VALIDITY}.start",
        "RX-12",
    )


def test_RX_12_creation_is_the_brussels_date() -> None:
    late = datetime(2025, 3, 31, 22, 30, tzinfo=UTC)  # 1 April 00:30 in Brussels
    resource = with_path(
        medication_request(now=late), "dispenseRequest.validityPeriod.start", "2025-03-31"
    )
    issue = only_issue(resource, now=late)
    assert (issue.expression, issue.rule) == (f"{VALIDITY}.start", "RX-12")


@pytest.mark.parametrize(
    ("created", "end"),
    [
        (datetime(2024, 11, 30, 9, tzinfo=UTC), date(2025, 2, 27)),
        (datetime(2025, 10, 19, 9, tzinfo=UTC), date(2026, 1, 18)),
    ],
)
def test_RX_10_default_end_filled_in(created: datetime, end: date) -> None:
    result = accepted(medication_request(now=created), now=created)
    assert result.validity_end == end
    assert result.resource["dispenseRequest"]["validityPeriod"]["end"] == end.isoformat()


def test_RX_12_end_before_start_refused() -> None:
    issue = only_issue(with_path(body(), "dispenseRequest.validityPeriod.end", "2025-03-09"))
    assert (issue.code, issue.expression, issue.rule) == ("invariant", f"{VALIDITY}.end", "RX-12")


def test_RX_12_end_of_one_day_accepted() -> None:
    result = accepted(with_path(body(), "dispenseRequest.validityPeriod.end", "2025-03-10"))
    assert result.validity_end == date(2025, 3, 10)


def test_RX_12_end_at_max_accepted() -> None:
    created = datetime(2020, 10, 1, 8, tzinfo=UTC)
    resource = with_path(
        medication_request(now=created), "dispenseRequest.validityPeriod.end", "2021-09-30"
    )
    assert accepted(resource, now=created).validity_end == date(2021, 9, 30)


def test_RX_12_end_after_max_is_VALIDITY_TOO_LONG() -> None:
    created = datetime(2020, 10, 1, 8, tzinfo=UTC)
    resource = with_path(
        medication_request(now=created), "dispenseRequest.validityPeriod.end", "2021-10-01"
    )
    issue = only_issue(resource, now=created)
    assert (issue.code, issue.expression, issue.rule) == (
        "business-rule",
        f"{VALIDITY}.end",
        "RX-12",
    )
    assert "VALIDITY_TOO_LONG" in issue.diagnostics


def test_RX_12_partial_end_date_refused() -> None:
    issue = only_issue(with_path(body(), "dispenseRequest.validityPeriod.end", "2025-05"))
    assert (issue.code, issue.expression, issue.rule) == ("value", f"{VALIDITY}.end", "RX-12")


def test_RX_12_guide_validity_as_datetimes_with_offsets() -> None:
    result = accepted(guide())
    assert result.validity_start == date(2025, 3, 10)
    assert result.validity_end == date(2025, 6, 9)
    period = result.resource["dispenseRequest"]["validityPeriod"]
    assert period == {"start": "2025-03-10T00:00:00+01:00", "end": "2025-06-09T00:00:00+02:00"}


@pytest.mark.parametrize(
    ("end", "last_day"),
    [
        ("2025-06-09T23:30:00-05:00", date(2025, 6, 10)),  # 06:30 in Brussels, the next day
        ("2025-06-09T22:30:00Z", date(2025, 6, 10)),  # 00:30 in Brussels (summer time)
        ("2025-06-09T21:59:59Z", date(2025, 6, 9)),
        ("2025-06-10T00:30:00+14:00", date(2025, 6, 9)),
    ],
)
def test_RX_12_datetime_end_means_its_brussels_day(end: str, last_day: date) -> None:
    resource = with_path(guide(), "dispenseRequest.validityPeriod.end", end)
    result = accepted(resource)
    assert result.validity_end == last_day
    assert result.resource["dispenseRequest"]["validityPeriod"]["end"] == end


def test_RX_12_end_instant_before_start_instant_on_the_same_day_refused() -> None:
    period = {"start": "2025-03-10T15:00:00+01:00", "end": "2025-03-10T09:00:00+01:00"}
    resource = with_path(guide(), "dispenseRequest.validityPeriod", period)
    issue = only_issue(resource)
    assert (issue.code, issue.expression, issue.rule) == ("invariant", f"{VALIDITY}.end", "RX-12")


# --- substitution (RX-19) -----------------------------------------------------------------------


@pytest.mark.parametrize("allowed", [True, False])
def test_RX_19_substitution_boolean_accepted(allowed: bool) -> None:
    accepted(body(substitution={"allowedBoolean": allowed}))


@pytest.mark.parametrize(
    ("substitution", "expression"),
    [
        ({"allowedBoolean": "yes"}, "MedicationRequest.substitution.allowedBoolean"),
        ({"allowedBoolean": 1}, "MedicationRequest.substitution.allowedBoolean"),
        (
            {"allowedCodeableConcept": {"text": "generic"}},
            "MedicationRequest.substitution.allowedCodeableConcept",
        ),
    ],
)
def test_RX_19_substitution_allowed_is_boolean_only(
    substitution: dict[str, Any], expression: str
) -> None:
    issue = only_issue(body(substitution=substitution))
    assert (issue.code, issue.expression, issue.rule) == ("value", expression, "RX-19")


def test_several_violations_reported_together() -> None:
    resource = body(status="draft", ssin="85073003329", nihdi="54263481527")
    result = validate_medication_request(resource, now=NOW)
    assert isinstance(result, list)
    assert [issue.rule for issue in result] == ["RX-6", "ID-2", "ID-8"]
