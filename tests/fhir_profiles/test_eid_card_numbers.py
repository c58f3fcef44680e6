"""The eID card number's check digits (CO-2, RX-18 b): the first ten digits modulo 97, a
remainder of 0 written 97. Examples from python-stdnum's ``stdnum.be.eid``."""

from __future__ import annotations

import pytest

from fhir_profiles.eid_card import check_digits, is_valid_card_number


@pytest.mark.parametrize("number", ["000001103271", "591191706458", "592123456732"])
def test_co2_card_numbers_with_their_check_digits_pass(number: str) -> None:
    assert is_valid_card_number(number)


def test_co2_a_remainder_of_zero_is_written_97() -> None:
    assert int("5912010999") % 97 == 0
    assert check_digits("5912010999") == "97"
    assert is_valid_card_number("591201099997")
    assert not is_valid_card_number("591201099900")


@pytest.mark.parametrize(
    "number",
    [
        "000001103225",  # wrong check digits
        "592123456789",
        "59212345673",  # 11 digits
        "5921234567320",  # 13 digits
        "592-1234567-32",  # printed form: the wire carries the digits only
        "59212345673A",
        "",
        "５９２１２３４５６７３２",  # full-width digits are not ASCII digits
    ],
)
def test_co2_anything_else_is_not_a_card_number(number: str) -> None:
    assert not is_valid_card_number(number)
