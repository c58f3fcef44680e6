"""When a recorded event can have happened: between 1900 and 2200.

A date or dateTime that records an event (a dispense handed over, an eID read, a consent given, a
service attested) outside those years is a typing error, not a fact; and a year such as 0001 or
9999 with a zone offset cannot even be converted to UTC (Python's datetime overflows). The year is
checked as written, before any conversion.
"""

from __future__ import annotations

from datetime import date
from typing import Final

FIRST_YEAR: Final = 1900
LAST_YEAR: Final = 2200
RANGE_TEXT: Final = f"between {FIRST_YEAR} and {LAST_YEAR}"


def is_event_time(moment: date) -> bool:
    """``moment`` (a date, or a datetime in its own zone) lies in years 1900..2200."""
    return FIRST_YEAR <= moment.year <= LAST_YEAR
