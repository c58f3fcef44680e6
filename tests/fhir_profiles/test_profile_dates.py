"""Validity dates in Europe/Brussels (RX-10..RX-12)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from fhir_profiles.dates import (
    add_months,
    brussels_date,
    default_validity_end,
    max_validity_end,
    parse_fhir_datetime,
    parse_fhir_day,
)


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2024, 11, 30), 3, date(2025, 2, 28)),  # clamped to month end
        (date(2024, 1, 31), 1, date(2024, 2, 29)),  # leap year
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2025, 10, 19), 3, date(2026, 1, 19)),  # across the year end
        (date(2025, 3, 31), -1, date(2025, 2, 28)),
    ],
)
def test_RX_12_add_months_clamps_to_month_end(start: date, months: int, expected: date) -> None:
    assert add_months(start, months) == expected


@pytest.mark.parametrize(
    ("created", "end"),
    [
        (date(2024, 11, 30), date(2025, 2, 27)),
        (date(2025, 10, 19), date(2026, 1, 18)),  # matches the hl7-be bisoprolol example
    ],
)
def test_RX_12_default_end_worked_examples(created: date, end: date) -> None:
    assert default_validity_end(created) == end


def test_RX_10_max_end_worked_example() -> None:
    # Recip-e: created 1 Oct 2020, executable up to 30 Sep 2021 inclusive.
    assert max_validity_end(date(2020, 10, 1)) == date(2021, 9, 30)


def test_RX_12_dates_are_brussels_calendar_dates() -> None:
    assert brussels_date(datetime(2025, 3, 31, 22, 30, tzinfo=UTC)) == date(2025, 4, 1)
    assert brussels_date(datetime(2025, 1, 31, 23, 30, tzinfo=UTC)) == date(2025, 2, 1)
    assert brussels_date(datetime(2025, 1, 31, 22, 30, tzinfo=UTC)) == date(2025, 1, 31)


def test_RX_12_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError):
        brussels_date(datetime(2025, 1, 1, 12, 0))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-10-19", date(2025, 10, 19)),
        ("2025-10-19T00:00:00+02:00", date(2025, 10, 19)),
        ("2025-10-18T22:30:00Z", date(2025, 10, 19)),
        ("2025-10", None),
        ("2025", None),
        ("2025-W42-1", None),
        ("20251019", None),
        ("2025-13-01", None),
        ("2025-10-19T10:00:00", None),  # no zone
    ],
)
def test_RX_11_validity_bounds_need_a_day(value: str, expected: date | None) -> None:
    assert parse_fhir_day(value) == expected


def test_RX_19_authored_on_parses_only_full_datetimes() -> None:
    parsed = parse_fhir_datetime("2025-10-19T10:00:00.123+02:00")
    assert parsed is not None
    assert parsed.utcoffset() is not None
    assert parse_fhir_datetime("2025-10-19") is None
