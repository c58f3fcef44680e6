"""Prescription validity in Europe/Brussels calendar dates (domain RX-10..RX-12).

Dates are inclusive calendar dates in Brussels: a prescription created at 23:30 UTC on 31 March is
created on 1 April in Belgium, and its validity counts from there.
"""

from __future__ import annotations

import calendar
import re
from datetime import MAXYEAR, MINYEAR, date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

BRUSSELS: Final = ZoneInfo("Europe/Brussels")

# The FHIR date and dateTime forms precise enough to yield a calendar day. ``fromisoformat`` alone
# is too lenient (it takes week dates and basic formats), so the shape is checked first.
_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})"
)


def add_months(d: date, n: int) -> date:
    """``d`` moved by ``n`` calendar months, clamped to the last day of a shorter month (RX-12)."""
    years, month0 = divmod(d.month - 1 + n, 12)
    year, month = d.year + years, month0 + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def default_validity_end(created: date) -> date:
    """Three months minus one day from creation (RX-10, RX-12): 2024-11-30 -> 2025-02-27."""
    return add_months(created, 3) - timedelta(days=1)


def max_validity_end(created: date) -> date:
    """One year minus one day from creation (RX-10, RX-12): 2020-10-01 -> 2021-09-30."""
    return add_months(created, 12) - timedelta(days=1)


def brussels_date(moment: datetime) -> date:
    """The Belgian calendar date of an aware datetime; a naive one is a programming error."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("brussels_date needs a timezone-aware datetime")
    return moment.astimezone(BRUSSELS).date()


def _placeable(day: date) -> bool:
    """Years 0001 and 9999 are at the ends of what Python's datetime holds: a zone offset, a day
    more or the move to UTC or Brussels overflows there. Any other year converts safely; whether
    it is plausible for an event is ``fhir_profiles.event_time``'s question."""
    return MINYEAR < day.year < MAXYEAR


def parse_fhir_datetime(value: str) -> datetime | None:
    """An aware datetime from a FHIR ``dateTime`` with time and zone; ``None`` for anything less,
    and for one in year 0001 or 9999, which cannot be placed in UTC or Brussels time."""
    if not _DATETIME.fullmatch(value):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:  # e.g. month 13 or second 60, which the regex lets through
        return None
    return moment if _placeable(moment) else None


def parse_fhir_day(value: str) -> date | None:
    """The Brussels calendar day of a FHIR ``date`` (YYYY-MM-DD) or full ``dateTime``.

    Partial dates (``2025``, ``2025-03``) give ``None``: a validity bound needs a day (RX-11).
    """
    if _DATE.fullmatch(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            return None
        return day if _placeable(day) else None  # the day after 9999-12-31 does not exist
    moment = parse_fhir_datetime(value)
    return None if moment is None else brussels_date(moment)
