"""Birth dates and ages from SSINs (ID-1..ID-4, PO-3): what the portal's minors rule and the demo's
people rely on."""

from __future__ import annotations

from datetime import UTC, date, datetime

from fhir_profiles import is_valid_ssin
from fhir_profiles.ages import age_at, birth_date, ssin_born_on


def test_a_made_up_ssin_is_valid_and_carries_its_birth_date_in_both_centuries() -> None:
    for born in (date(1999, 12, 31), date(2000, 1, 1), date(2016, 2, 29)):
        ssin = ssin_born_on(born, 998)
        assert is_valid_ssin(ssin)
        assert birth_date(ssin) == born


def test_a_BIS_number_s_raised_month_still_gives_the_birth_date() -> None:
    head = 904_101_001  # born 1 January 1990, month raised by 40 (ID-4)
    bis = f"{head}{97 - head % 97:02d}"
    assert birth_date(bis) == date(1990, 1, 1)


def test_unknown_dates_and_bad_numbers_have_no_age() -> None:
    assert birth_date("15000100122") is None  # month and day 00 (ID-4)
    assert birth_date("90010100124") is None  # wrong check digits
    assert age_at("15000100122", datetime(2026, 1, 1, tzinfo=UTC)) is None


def test_the_age_turns_on_the_brussels_calendar_day() -> None:
    ssin = ssin_born_on(date(2010, 6, 15), 1)
    assert age_at(ssin, datetime(2026, 6, 14, 21, 59, tzinfo=UTC)) == 15  # 23:59 in Brussels
    assert age_at(ssin, datetime(2026, 6, 14, 22, 0, tzinfo=UTC)) == 16  # midnight in Brussels
    leap = ssin_born_on(date(2008, 2, 29), 2)
    assert age_at(leap, datetime(2026, 2, 28, 12, tzinfo=UTC)) == 17
    assert age_at(leap, datetime(2026, 3, 1, 12, tzinfo=UTC)) == 18
