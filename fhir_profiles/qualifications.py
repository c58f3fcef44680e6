"""Which NIHDI qualification suffixes count as a prescriber (domain ID-8, RX-2).

[A] No authoritative table exists (ID-8, open question Q2), so the ranges are reference data in
``data/nihdi_qualifications.json``, not code: physician 000-099 (000-009 general practice, 010-099
specialist titles), dentist 100-199, midwife 200-299, pharmacist 300-399, nurse 400-499,
physiotherapist 500-599, anything else ``other``. Prescribers are physicians, dentists and midwives
(RX-2). ID-8 also warns that role checks should rather use the authenticated role attribute.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Final

OTHER: Final = "other"
_DATA_FILE: Final = "nihdi_qualifications.json"


@dataclass(frozen=True)
class _Table:
    profession_by_code: dict[str, str]
    prescribers: frozenset[str]


@cache
def _table() -> _Table:
    raw = json.loads(files("fhir_profiles").joinpath("data", _DATA_FILE).read_text("utf-8"))
    professions: dict[str, dict[str, bool]] = raw["professions"]
    by_code: dict[str, str] = {}
    for entry in raw["ranges"]:
        profession = entry["profession"]
        if profession not in professions:
            raise ValueError(f"{_DATA_FILE}: unknown profession {profession!r}")
        for number in range(int(entry["from"]), int(entry["to"]) + 1):
            by_code[f"{number:03d}"] = profession
    prescribers = frozenset(name for name, facts in professions.items() if facts["prescriber"])
    return _Table(by_code, prescribers)


def profession_of(code: str) -> str:
    """The profession behind a 3-digit qualification code, or ``"other"`` (unknown or malformed)."""
    return _table().profession_by_code.get(code, OTHER)


def is_prescriber_qualification(code: str) -> bool:
    """Whether the qualification belongs to a physician, dentist or midwife (RX-2, ID-8)."""
    return profession_of(code) in _table().prescribers
