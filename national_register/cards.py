"""Cards and the register's answer about one (pure: no I/O).

A person holds one current card; issuing a new one replaces the previous (lost, stolen, renewed).
A card counts as the holder's proof only while it is current and within its validity, on the
Brussels calendar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Final, TypeGuard
from zoneinfo import ZoneInfo

BRUSSELS: Final = ZoneInfo("Europe/Brussels")
_CARD: Final = re.compile(r"^[0-9]{12}$")
_SSIN: Final = re.compile(r"^[0-9]{11}$")


def card_check_digits(first_ten: str) -> str:
    """The eID card number's check digits: the first ten digits modulo 97, 0 written as 97
    (python-stdnum ``stdnum.be.eid``, after the National Register's IT instruction 195). The
    register keeps its own copy: it shares no code with the gateway."""
    return f"{int(first_ten) % 97 or 97:02d}"


def is_card_number(value: object) -> TypeGuard[str]:
    return (
        isinstance(value, str)
        and _CARD.match(value) is not None
        and value[10:] == card_check_digits(value[:10])
    )


def is_ssin_shape(value: object) -> TypeGuard[str]:
    """11 digits. The register does not re-check an SSIN's check digits: an SSIN it does not
    know simply holds no card."""
    return isinstance(value, str) and _SSIN.match(value) is not None


class Result(StrEnum):
    """The answer to "is ``card_number`` the current card of ``ssin``?" (README.md)."""

    VALID = "valid"  # yes: the person's current card, within its validity
    UNKNOWN_CARD = "unknown-card"  # no card with this number was ever issued
    NOT_HOLDER = "not-holder"  # the card was issued to another person
    REPLACED = "replaced"  # the person's card, but a newer one was issued since
    EXPIRED = "expired"  # the person's current card, past its last day of validity


@dataclass(frozen=True)
class Card:
    card_number: str
    ssin: str
    valid_from: date  # informative: the day the card was issued
    valid_until: date  # last day of validity, inclusive
    replaced_at: datetime | None = None


def verdict(card: Card | None, ssin: str, today: date) -> Result:
    if card is None:
        return Result.UNKNOWN_CARD
    if card.ssin != ssin:
        return Result.NOT_HOLDER
    if card.replaced_at is not None:
        return Result.REPLACED
    if today > card.valid_until:
        return Result.EXPIRED
    return Result.VALID


def brussels_today(now: datetime) -> date:
    return now.astimezone(BRUSSELS).date()
