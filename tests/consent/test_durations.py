"""CO-6: legal durations of therapeutic relationships, with month-end clamping."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from consent import RELATIONSHIP_MONTHS, RelationshipKind, add_months, relationship_end

K = RelationshipKind
START = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "end"),
    [
        (K.EID_READ, datetime(2026, 6, 14, 9, 30, tzinfo=UTC)),  # 15 months
        (K.REFERRAL, datetime(2025, 6, 14, 9, 30, tzinfo=UTC)),  # 3 months
        (K.HOSPITAL, datetime(2025, 6, 14, 9, 30, tzinfo=UTC)),  # 3 months
        (K.EMERGENCY, datetime(2025, 4, 14, 9, 30, tzinfo=UTC)),  # 1 month
        (K.GMF, datetime(2026, 3, 14, 9, 30, tzinfo=UTC)),  # 1 year
    ],
)
def test_CO_6_relationship_durations(kind: RelationshipKind, end: datetime) -> None:
    assert relationship_end(kind, START) == end
    assert relationship_end(kind.value, START) == end  # the code as stored


def test_CO_6_every_kind_has_a_duration() -> None:
    assert set(RELATIONSHIP_MONTHS) == set(RelationshipKind)


@pytest.mark.parametrize(
    ("kind", "start", "end"),
    [
        (K.EMERGENCY, datetime(2024, 1, 31, tzinfo=UTC), datetime(2024, 2, 29, tzinfo=UTC)),
        (K.EMERGENCY, datetime(2025, 1, 31, tzinfo=UTC), datetime(2025, 2, 28, tzinfo=UTC)),
        (K.REFERRAL, datetime(2024, 11, 30, tzinfo=UTC), datetime(2025, 2, 28, tzinfo=UTC)),
        (K.EID_READ, datetime(2023, 11, 30, tzinfo=UTC), datetime(2025, 2, 28, tzinfo=UTC)),
        (K.GMF, datetime(2024, 2, 29, tzinfo=UTC), datetime(2025, 2, 28, tzinfo=UTC)),
        (K.HOSPITAL, datetime(2025, 10, 31, tzinfo=UTC), datetime(2026, 1, 31, tzinfo=UTC)),
    ],
)
def test_CO_6_months_clamp_to_the_month_end(
    kind: RelationshipKind, start: datetime, end: datetime
) -> None:
    assert relationship_end(kind, start) == end


def test_CO_6_keeps_time_of_day_and_zone() -> None:
    brussels = ZoneInfo("Europe/Brussels")
    start = datetime(2025, 1, 10, 16, 45, tzinfo=brussels)  # winter time
    end = relationship_end(K.REFERRAL, start)  # into summer time: same wall-clock time
    assert (end.date().isoformat(), end.hour, end.minute, end.tzinfo) == (
        "2025-04-10",
        16,
        45,
        brussels,
    )


def test_CO_6_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="not a valid"):
        relationship_end("declared-by-neighbour", START)


@pytest.mark.parametrize(
    ("months", "expected"), [(0, (2025, 3, 31)), (-1, (2025, 2, 28)), (11, (2026, 2, 28))]
)
def test_add_months_in_both_directions(months: int, expected: tuple[int, int, int]) -> None:
    moved = add_months(datetime(2025, 3, 31, tzinfo=UTC), months)
    assert (moved.year, moved.month, moved.day) == expected
