"""Finding a provider in NIHDI columns: the SQL form of ``consent.same_provider`` (ID-7, ID-9).

A prescriber is found by person: the first eight digits of a professional NIHDI number stay the
same for a whole career while the competence code changes with his titles, so his prescriptions,
claims and relationships are his under every competence code and in the 8-digit form. A
pharmacy's organisation number (ID-9) is found exactly. ``Criteria`` fields that name a provider
take a plain string (exact) or ``SamePerson`` (by person); ``provider_match`` picks by role.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

from sqlalchemy import ColumnElement, or_

from fhir_profiles.nihdi import parse_professional


@dataclass(frozen=True)
class SamePerson:
    """Rows naming the person behind the professional NIHDI number ``nihdi`` (ID-7)."""

    nihdi: str


ProviderMatch: TypeAlias = str | SamePerson


def provider_match(role: str, nihdi: str) -> ProviderMatch:
    """How a caller of ``role`` is found: a prescriber by person, anyone else exactly (ID-9)."""
    return SamePerson(nihdi) if role == "prescriber" else nihdi


def nihdi_condition(column: ColumnElement[Any], wanted: ProviderMatch) -> ColumnElement[bool]:
    """``column`` names ``wanted``: as ``consent.same_provider`` decides it, in SQL.

    By person: the 8-digit form itself, or an 11-character value starting with those 8 digits.
    The person part is 8 ASCII digits, so it holds no LIKE wildcard, and ``___`` is exactly three
    more characters: a 9- or 10-character value never matches (both SQLite and PostgreSQL). Stored
    numbers were validated as digits when written. A value that is no professional number
    matches itself only.
    """
    if isinstance(wanted, str):
        return column == wanted
    number = parse_professional(wanted.nihdi)
    if number is None:
        return column == wanted.nihdi
    return or_(column == number.person, column.like(f"{number.person}___"))
