"""What an NIHDI professional number says (ID-7, ID-8, RX-2): the profession from the first digit,
the person from the first eight, who prescribes from the reference data; the competence code is
kept and shown but never decides the profession."""

from __future__ import annotations

import pytest

from fhir_profiles.nihdi import (
    Profession,
    describe,
    may_prescribe,
    parse_professional,
    same_person,
)
from tests.fixtures.nihdi import Series, nihdi

EVERY_COMPETENCE = [f"{code:03d}" for code in range(1000)]

# hl7-be eAttest example ex01: a physician and a physiotherapist (modulo-97 series).
EATTEST_PHYSICIAN = "19234011004"
EATTEST_PHYSIOTHERAPIST = "54263481527"


@pytest.mark.parametrize(
    ("first6", "competence", "profession"),
    [
        ("171234", "580", Profession.PHYSICIAN),  # a specialist title, once read as physiotherapy
        ("254321", "000", Profession.HOSPITAL_PHARMACIST),
        ("340515", "301", Profession.DENTIST),
        ("412345", "401", Profession.NURSE_OR_MIDWIFE),
        ("542634", "527", Profession.PHYSIOTHERAPIST_OR_SPEECH_THERAPIST),
        ("612345", "000", Profession.PHARMACIST),  # once read as a physician
        ("712345", "000", Profession.HOSPITAL),
        ("812345", "000", Profession.CLINICAL_LABORATORY),
    ],
)
def test_ID_8_profession_from_the_first_digit(
    first6: str, competence: str, profession: Profession
) -> None:
    series: Series
    for series in (97, 89):
        number = parse_professional(nihdi(first6, competence, series=series))
        assert number is not None
        assert number.profession is profession
        assert number.competence == competence


@pytest.mark.parametrize("first6", ["012345", "912345"])
def test_ID_8_first_digit_0_or_9_gives_no_profession_and_no_prescriber(first6: str) -> None:
    value = nihdi(first6, "004")
    number = parse_professional(value)
    assert number is not None
    assert number.profession is None
    assert not may_prescribe(value)
    assert describe(value) is None


@pytest.mark.parametrize(("first6", "series"), [("171234", 97), ("198765", 89)])
def test_ID_8_a_physician_prescribes_whatever_the_competence_code(
    first6: str, series: Series
) -> None:
    assert all(may_prescribe(nihdi(first6, c, series=series)) for c in EVERY_COMPETENCE)


def test_ID_8_a_dentist_prescribes_whatever_the_competence_code() -> None:
    assert all(may_prescribe(nihdi("340515", code)) for code in EVERY_COMPETENCE)


@pytest.mark.parametrize(("first6", "series"), [("412345", 89), ("401234", 97)])
def test_ID_8_a_midwife_prescribes_under_competence_code_003_only(
    first6: str, series: Series
) -> None:
    # NIHDI gives a midwife who may prescribe a specific number ending in 003; any other code of
    # profession 4 is a nurse (or a midwife without that number).
    prescribing = [c for c in EVERY_COMPETENCE if may_prescribe(nihdi(first6, c, series=series))]
    assert prescribing == ["003"]


@pytest.mark.parametrize("first6", ["254321", "542634", "612345", "712345", "812345"])
def test_ID_8_pharmacists_physiotherapists_and_others_never_prescribe(first6: str) -> None:
    assert not any(may_prescribe(nihdi(first6, code)) for code in EVERY_COMPETENCE)
    assert not may_prescribe(EATTEST_PHYSIOTHERAPIST)


def test_ID_8_the_eight_digit_form_tells_the_profession_not_the_competence() -> None:
    assert may_prescribe(nihdi("171234", None))  # a physician
    assert may_prescribe(nihdi("340515", None))  # a dentist
    assert not may_prescribe(nihdi("412345", None, series=89))  # nurse or midwife: 003 unseen
    short = parse_professional(EATTEST_PHYSICIAN[:8])
    assert short is not None
    assert (short.profession, short.competence) == (Profession.PHYSICIAN, None)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (EATTEST_PHYSICIAN, "physician (004)"),
        (nihdi("171234", "580"), "physician (580)"),
        (nihdi("478213", "003", series=89), "midwife (003)"),
        (nihdi("412345", "401", series=89), "nurse or midwife (401)"),
        (EATTEST_PHYSIOTHERAPIST, "physiotherapist or speech therapist (527)"),
        (nihdi("612345", "000"), "pharmacist (000)"),
        (nihdi("171234", None), "physician"),
    ],
)
def test_ID_8_the_competence_code_is_kept_and_shown(value: str, shown: str) -> None:
    assert describe(value) == shown


def test_ID_7_the_first_eight_digits_name_the_person() -> None:
    gp = nihdi("198765", "004", series=89)
    specialist = nihdi("198765", "580", series=89)  # the same physician after a new title
    assert same_person(gp, specialist)
    assert same_person(gp, gp[:8])  # and in the deprecated 8-digit form
    assert same_person(gp[:8], specialist)
    assert not same_person(gp, nihdi("171234", "004"))


def test_ID_7_the_same_first_six_digits_in_the_two_series_are_two_people() -> None:
    # Why eight digits and not six identify a person since the modulo-89 series (ID-7).
    older, newer = nihdi("198765", "004"), nihdi("198765", "004", series=89)
    assert older[:6] == newer[:6]
    assert not same_person(older, newer)


@pytest.mark.parametrize(
    "other",
    [
        EATTEST_PHYSICIAN[:9],  # 9 and 10 digits are no form of the number
        EATTEST_PHYSICIAN[:10],
        EATTEST_PHYSICIAN + "0",
        "1923401l004",
        "１９２３４０１１００４",  # fullwidth digits
        "",
        None,
    ],
)
def test_ID_7_only_the_8_or_11_digit_forms_name_a_person(other: str | None) -> None:
    assert not same_person(EATTEST_PHYSICIAN, other)
    assert not same_person(other, EATTEST_PHYSICIAN)
    assert not may_prescribe(other or "")
