"""What one register process runs: where it stores, whom it knows at start, how it misbehaves."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson

from mock_services.faults import FaultSettings
from national_register.cards import Card, is_card_number, is_ssin_shape

BUILT_IN_PERSONS = Path(__file__).parent / "data" / "persons.json"
# The seed is loaded once; a replaced card's replacement time is this instant (any past one does).
_SEEDED_REPLACED_AT = "2025-11-10T09:00:00+00:00"


@dataclass(frozen=True)
class RegisterConfig:
    data_dir: Path = Path("var/national_register")
    """The SQLite file ``national_register.db`` goes here unless ``database_url`` is set."""
    database_url: str | None = None
    """PostgreSQL URL; the register gets the schema ``national_register``."""
    persons_file: Path | None = None
    """Persons and cards to seed (JSON like ``data/persons.json``); default: the built-in seed."""
    faults: FaultSettings = field(default_factory=FaultSettings)
    seed: int | None = None


def load_persons(path: Path | None) -> list[Card]:
    """The seed's cards; a malformed file is a ``ValueError`` naming the entry, not the value."""
    raw = orjson.loads((path or BUILT_IN_PERSONS).read_bytes())
    result: list[Card] = []
    for i, person in enumerate(raw.get("persons", [])):
        ssin = person.get("ssin")
        if not is_ssin_shape(ssin):
            raise ValueError(f"persons[{i}].ssin: 11 digits expected")
        for j, card in enumerate(person.get("cards", [])):
            result.append(_card(card, ssin, f"persons[{i}].cards[{j}]"))
    return result


def _card(entry: dict[str, Any], ssin: str, where: str) -> Card:
    number = entry.get("card_number")
    if not is_card_number(number):
        raise ValueError(f"{where}.card_number: 12 digits with mod-97 check digits expected")
    try:
        valid_from = date.fromisoformat(entry["valid_from"])
        valid_until = date.fromisoformat(entry["valid_until"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where}: valid_from and valid_until are YYYY-MM-DD dates") from exc
    replaced = datetime.fromisoformat(_SEEDED_REPLACED_AT) if entry.get("replaced") else None
    return Card(number, ssin, valid_from, valid_until, replaced)
