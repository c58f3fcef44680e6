"""NIHDI qualification reference data (ID-8, RX-2); the table itself is an assumption [A]."""

from __future__ import annotations

import pytest

from fhir_profiles.identifiers import nihdi_qualification
from fhir_profiles.qualifications import is_prescriber_qualification, profession_of


def test_ID_8_physician_from_eattest_example_is_prescriber() -> None:
    code = nihdi_qualification("19234011004")
    assert code == "004"
    assert profession_of(code) == "physician"
    assert is_prescriber_qualification(code)


def test_ID_8_physiotherapist_from_eattest_example_is_not_prescriber() -> None:
    code = nihdi_qualification("54263481527")
    assert code == "527"
    assert profession_of(code) == "physiotherapist"
    assert not is_prescriber_qualification(code)


@pytest.mark.parametrize(
    ("code", "profession", "prescriber"),
    [
        ("000", "physician", True),
        ("010", "physician", True),
        ("099", "physician", True),
        ("101", "dentist", True),
        ("201", "midwife", True),
        ("301", "pharmacist", False),
        ("401", "nurse", False),
        ("900", "other", False),
    ],
)
def test_RX_2_prescribers_are_physicians_dentists_midwives(
    code: str, profession: str, prescriber: bool
) -> None:
    assert profession_of(code) == profession
    assert is_prescriber_qualification(code) is prescriber


@pytest.mark.parametrize("code", ["", "4", "0004", "abc"])
def test_ID_8_malformed_code_is_other(code: str) -> None:
    assert profession_of(code) == "other"
    assert not is_prescriber_qualification(code)
