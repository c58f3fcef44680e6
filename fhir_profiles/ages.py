"""A person's age from the birth date the SSIN carries (ID-1, ID-4; minors PO-3).

The birth date is read with python-stdnum (``stdnum.be.nn``, ``stdnum.be.bis`` for BIS numbers,
whose month is raised by 20 or 40, ID-4). A number whose date is not fully known (month or day
``00``, ID-4 and ID-5) has no birth date here: callers decide what an unknown age means.
Ages count whole years in Europe/Brussels calendar days, as every date rule here does (RX-12).
"""

from __future__ import annotations

from datetime import date, datetime

from stdnum.be import bis, nn
from stdnum.exceptions import ValidationError

from fhir_profiles.dates import brussels_date
from fhir_profiles.identifiers import is_valid_ssin, normalise_ssin

# PO-3: the portal's ages. From 12 to 16 the patient's own access is blocked (the RSW rule); under
# 12 the parents act for the child; from 16 the young person manages his own access.
OWN_ACCESS_AGE = 16
REPRESENTED_BELOW_AGE = 12

_BORN_2000_OFFSET = 2_000_000_000  # ID-2, ID-3


def birth_date(ssin: str) -> date | None:
    """The birth date in an SSIN or BIS number, or ``None`` when unknown or not a valid number."""
    digits = normalise_ssin(ssin)
    if not is_valid_ssin(digits):
        return None
    try:
        return bis.get_birth_date(digits) if bis.is_valid(digits) else nn.get_birth_date(digits)
    except (ValidationError, ValueError):  # a month above 12 once BIS's 20/40 are taken off
        return None


def age_on(born: date, day: date) -> int:
    """Whole years from ``born`` to ``day``; a 29 February birthday falls on 1 March otherwise."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def age_at(ssin: str, moment: datetime) -> int | None:
    """The age of the SSIN's holder on the Brussels calendar day of ``moment``; ``None``: unknown."""
    born = birth_date(ssin)
    return None if born is None else age_on(born, brussels_date(moment))


def ssin_born_on(born: date, sequence: int) -> str:
    """A valid SSIN for ``born`` with the day's sequence number (1..998: odd men, even women, ID-1)
    and its check digits (ID-2, ID-3). For demo and test people whose age must hold on any date."""
    if not 1 <= sequence <= 998:
        raise ValueError("the sequence number is 1..998")
    head = f"{born:%y%m%d}{sequence:03d}"
    number = int(head) + (_BORN_2000_OFFSET if born.year >= 2000 else 0)
    return f"{head}{97 - number % 97:02d}"
