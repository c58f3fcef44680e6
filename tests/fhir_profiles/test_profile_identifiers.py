"""Identifier validators: SSIN (ID-1..ID-5), NIHDI (ID-6, ID-7), CBE (ID-10, ID-11), CNK, RID.

What an NIHDI number means (profession, person, prescriber) is test_profile_qualifications.py.
"""

from __future__ import annotations

import secrets

import pytest

from fhir_profiles.identifiers import (
    RID_PATTERN,
    is_valid_cbe,
    is_valid_cnk,
    is_valid_nihdi_professional,
    is_valid_ssin,
    new_rid,
    normalise_rid,
    normalise_ssin,
)
from tests.fixtures.nihdi import check_digits, nihdi

# Domain 1.1 worked examples, verdict as in the table.
SSIN_TABLE = [
    ("85073003328", True),  # 1985-07-30, pre-2000 rule
    ("01010100126", True),  # 2001-01-01, 2000 rule
    ("01010100194", True),  # 1901-01-01, pre-2000 rule
    ("05022900252", True),  # "2005-02-29": no calendar check (ID-5)
    ("85473003317", True),  # BIS, month + 40
    ("73031805784", True),  # hl7-be eAttest example
    ("93051822361", True),  # viw-costablanca example
    ("85073003329", False),  # last digit altered
]


@pytest.mark.parametrize(("ssin", "valid"), SSIN_TABLE)
def test_ID_2_ssin_check_digits_table(ssin: str, valid: bool) -> None:
    assert is_valid_ssin(ssin) is valid


@pytest.mark.parametrize("printed", ["85.07.30-033.28", "850730 033 28", "850730-03328"])
def test_ID_1_ssin_printed_forms_are_stripped(printed: str) -> None:
    assert is_valid_ssin(printed)
    assert normalise_ssin(printed) == "85073003328"


@pytest.mark.parametrize(
    "value", ["8507300332", "850730033288", "8507300332A", "", "85073003328\n", "٨٥٠٧٣٠٠٣٣٢٨"]
)
def test_ID_1_ssin_needs_eleven_ascii_digits(value: str) -> None:
    assert not is_valid_ssin(value)


def test_ID_3_remainder_zero_gives_97_for_both_centuries() -> None:
    assert 850730061 % 97 == 0
    assert is_valid_ssin("85073006197")
    assert (2_000_000_000 + 10101027) % 97 == 0
    assert is_valid_ssin("01010102797")
    assert not is_valid_ssin("85073006100")


@pytest.mark.parametrize(
    "ssin",
    [
        "85473003317",  # BIS, sex known (+40)
        "85273003371",  # BIS, sex unknown (+20)
        "85000003306",  # unknown month and day
    ],
)
def test_ID_4_bis_and_unknown_dates_accepted(ssin: str) -> None:
    assert is_valid_ssin(ssin)


def test_ID_5_no_calendar_check() -> None:
    assert is_valid_ssin("05022900252")


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("19234011004", True),  # 11 digits
        ("19234011", True),  # deprecated 8-digit form
        ("1923401100", False),
        ("192340110045", False),
        ("1-923401-10-04", False),  # no punctuation in FHIR
        ("1923401100A", False),
    ],
)
def test_ID_6_nihdi_length(value: str, valid: bool) -> None:
    assert is_valid_nihdi_professional(value) is valid


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("19234011004", True),  # physician, hl7-be eAttest example: 192340 mod 97 = 86 -> 11
        ("54263481527", True),  # physiotherapist: 542634 mod 97 = 16 -> 81
        ("10000797004", True),  # remainder 0 -> 97
        ("19234012004", False),  # check digits altered
        ("54263480527", False),
    ],
)
def test_ID_7_nihdi_check_digits(value: str, valid: bool) -> None:
    assert is_valid_nihdi_professional(value) is valid


def test_ID_7_nihdi_check_digit_can_be_switched_off() -> None:
    assert is_valid_nihdi_professional("19234012004", check_digit=False)
    assert not is_valid_nihdi_professional("1923401200", check_digit=False)


@pytest.mark.parametrize(
    ("first6", "competence"),
    [
        ("198765", "004"),  # a physician registered since 1 April 2019
        ("178000", "580"),  # a specialist; 178000 = 89 x 2000: remainder 0 gives 89, never 00
        ("478213", "003"),  # a midwife who prescribes (since 2013)
        ("412345", "401"),  # a home nurse (since 2013)
    ],
)
def test_ID_7_nihdi_modulo_89_series_is_valid(first6: str, competence: str) -> None:
    number = nihdi(first6, competence, series=89)
    assert is_valid_nihdi_professional(number)
    assert is_valid_nihdi_professional(number[:8])  # the deprecated form carries the same digits


def test_ID_7_modulo_89_remainder_zero_gives_89() -> None:
    assert is_valid_nihdi_professional("17800089580")
    assert not is_valid_nihdi_professional("17800000580")


@pytest.mark.parametrize("first6", ["198765", "412345", "171234"])
def test_ID_7_nihdi_check_digits_of_neither_series_are_refused(first6: str) -> None:
    accepted = {check_digits(first6, 97), check_digits(first6, 89)}
    for check in (f"{n:02d}" for n in range(100)):
        assert is_valid_nihdi_professional(f"{first6}{check}004") is (check in accepted), check


@pytest.mark.parametrize(
    ("cbe", "valid"),
    [
        ("0411724220", True),  # sickness-fund CBE in the eAttest response example
        ("0200065765", True),
        ("0425222333", False),  # eAttest request example, expected 63
    ],
)
def test_ID_11_cbe_check_digits(cbe: str, valid: bool) -> None:
    assert is_valid_cbe(cbe) is valid


@pytest.mark.parametrize(
    "cbe",
    [
        "2411724220",  # first digit must be 0 or 1
        "0411.724.220",  # display form: no punctuation in FHIR
        "041172422",
        "04117242200",
    ],
)
def test_ID_10_cbe_format(cbe: str) -> None:
    assert not is_valid_cbe(cbe)


@pytest.mark.parametrize(
    ("cnk", "valid"),
    [
        ("1439562", True),
        ("0012345", True),
        ("143956", False),
        ("14395621", False),
        ("143956A", False),
    ],
)
def test_ID_15_cnk_is_seven_digits(cnk: str, valid: bool) -> None:
    assert is_valid_cnk(cnk) is valid


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("BEP1LASIX001", "BEP1LASIX001"),
        ("bep1bisop003", "BEP1BISOP003"),  # case-insensitive on input
        ("BEP1LASIX00", None),
        ("BEP1LASIX0012", None),
        ("XEP1LASIX001", None),
        ("BEP1LASIX-01", None),
        ("BEP1LASIX001\n", None),
        ("bep1ıasix001", None),  # the dotless i upper-cases to I: refuse non-ASCII first
    ],
)
def test_RX_4_rid_input_format(value: str, expected: str | None) -> None:
    assert normalise_rid(value) == expected


def test_RX_4_new_rid_is_bep_plus_nine_random_characters() -> None:
    rids = {new_rid() for _ in range(1000)}
    assert len(rids) == 1000
    assert all(RID_PATTERN.fullmatch(rid) for rid in rids)


def test_RX_4_new_rid_draws_from_the_csprng(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets, "choice", lambda alphabet: alphabet[-1])
    assert new_rid() == "BEPZZZZZZZZZ"
