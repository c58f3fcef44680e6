"""Instants around the daylight-saving changes of 2026 in Brussels, and how clients write them.

Brussels changes from CET (+01:00) to CEST (+02:00) at 02:00 on the last Sunday of March
(2026-03-29: 02:00 local does not exist) and back at 03:00 on the last Sunday of October
(2026-10-25: 02:00-03:00 local happens twice). A client may write one instant with any offset; the
gateway must treat every spelling alike (docs/domain.md, section 10).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

BRUSSELS = ZoneInfo("Europe/Brussels")

# The spellings of a zone the tests write instants with.
OFFSETS = ("Z", "+01:00", "+02:00", "-05:00", "+14:00")

SPRING = date(2026, 3, 29)  # last Sunday of March: 23 hours in Brussels
AUTUMN = date(2026, 10, 25)  # last Sunday of October: 25 hours in Brussels
DST_DAYS = (SPRING, AUTUMN)

# Half an hour before the spring change (01:30 CET), and the first 02:30 of the autumn one (CEST).
BEFORE_SPRING_CHANGE = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
FIRST_AUTUMN_HALF_PAST_TWO = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
DST_INSTANTS = (BEFORE_SPRING_CHANGE, FIRST_AUTUMN_HALF_PAST_TWO)


def zone(offset: str) -> timezone:
    if offset == "Z":
        return UTC
    sign = -1 if offset[0] == "-" else 1
    hours, minutes = int(offset[1:3]), int(offset[4:6])
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def written(moment: datetime, offset: str, *, timespec: str = "seconds") -> str:
    """``moment`` as a FHIR dateTime in ``offset`` (``Z`` spelled as such)."""
    text = moment.astimezone(zone(offset)).isoformat(timespec=timespec)
    return text.replace("+00:00", "Z") if offset == "Z" else text


def brussels_midnight_after(day: date) -> datetime:
    """The first instant after ``day`` in Brussels: when a prescription valid until ``day`` expires."""
    return datetime.combine(day + timedelta(days=1), time(), BRUSSELS).astimezone(UTC)


def brussels(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), BRUSSELS).astimezone(UTC)
