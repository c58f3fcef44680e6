"""NIHDI professional numbers as NIHDI issues them: profession, person, competence (ID-6..ID-8).

``P NNNNN CC QQQ`` (ID-7): the first digit is the profession, the first eight digits name the
person for a whole career, the last three are the competence code, which changes with the
person's titles (a general practitioner who becomes a specialist keeps his first eight digits and
gets another competence code). Hence:

- the profession comes from the first digit only (``Profession``, ID-8); the competence code is
  kept and shown (``NihdiNumber.competence``, ``describe``) but never decides the profession;
- who prescribes medicines is reference data (``data/nihdi_prescribers.json``, RX-2): physicians
  and dentists whatever their competence code, midwives under the competence code NIHDI gives
  them for it (003);
- a person is the same person under every competence code and in the deprecated 8-digit form:
  ``same_person`` is the one comparison for authorship, exclusions and relationships. NIHDI
  organisation numbers (pharmacies, ID-9) are not professional numbers: they compare exactly,
  and the caller, who knows which kind it holds, does so.

Form and check digits (modulo 97 or 89) are ``identifiers.is_valid_nihdi_professional``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib.resources import files
from typing import Any, Final

_DATA_FILE: Final = "nihdi_prescribers.json"
PERSON_DIGITS: Final = 8  # ID-7: the first eight digits stay the same for a whole career
_LENGTHS: Final = (PERSON_DIGITS, 11)  # ID-6: the deprecated 8-digit form, the full number


class Profession(StrEnum):
    """ID-8: the profession the first digit of a professional NIHDI number gives."""

    PHYSICIAN = "physician"  # 1
    HOSPITAL_PHARMACIST = "hospital-pharmacist"  # 2
    DENTIST = "dentist"  # 3
    NURSE_OR_MIDWIFE = "nurse-or-midwife"  # 4: the competence code tells them apart
    PHYSIOTHERAPIST_OR_SPEECH_THERAPIST = "physiotherapist-or-speech-therapist"  # 5
    PHARMACIST = "pharmacist"  # 6
    HOSPITAL = "hospital"  # 7
    CLINICAL_LABORATORY = "clinical-laboratory"  # 8


# ID-8 (nl.wikipedia "RIZIV"; care-ace wiki "RIZIV-nummer"): 0 and 9 give no profession here.
_BY_DIGIT: Final[Mapping[str, Profession]] = {
    "1": Profession.PHYSICIAN,
    "2": Profession.HOSPITAL_PHARMACIST,
    "3": Profession.DENTIST,
    "4": Profession.NURSE_OR_MIDWIFE,
    "5": Profession.PHYSIOTHERAPIST_OR_SPEECH_THERAPIST,
    "6": Profession.PHARMACIST,
    "7": Profession.HOSPITAL,
    "8": Profession.CLINICAL_LABORATORY,
}


@dataclass(frozen=True)
class NihdiNumber:
    """A string with the form of a professional NIHDI number: 8 or 11 ASCII digits."""

    value: str

    @property
    def person(self) -> str:
        """The eight digits that name the person under every competence code (ID-7)."""
        return self.value[:PERSON_DIGITS]

    @property
    def profession(self) -> Profession | None:
        return _BY_DIGIT.get(self.value[0])

    @property
    def competence(self) -> str | None:
        """The 3-digit competence code; ``None`` in the deprecated 8-digit form (ID-6)."""
        return self.value[PERSON_DIGITS:] or None


def parse_professional(value: str | None) -> NihdiNumber | None:
    """``value`` as a professional number if it has the form of one, else ``None``.

    The form only: whether the check digits match is ``is_valid_nihdi_professional``.
    """
    if value is None or len(value) not in _LENGTHS or not (value.isascii() and value.isdigit()):
        return None
    return NihdiNumber(value)


def same_person(a: str | None, b: str | None) -> bool:
    """Whether two professional numbers name the same person: same first eight digits (ID-7).

    An 11-digit number matches the same person's other competence codes and the 8-digit form;
    anything that is not 8 or 11 digits matches nothing (a 9-digit prefix is no person).
    """
    first, second = parse_professional(a), parse_professional(b)
    return first is not None and second is not None and first.person == second.person


# --- who prescribes (reference data) -----------------------------------------------------------


@dataclass(frozen=True)
class _Prescribing:
    any_competence: bool
    labels: Mapping[str, str]  # competence code -> what the holder is called (e.g. "midwife")


@cache
def _prescribing() -> Mapping[Profession, _Prescribing]:
    raw: dict[str, Any] = json.loads(
        files("fhir_profiles").joinpath("data", _DATA_FILE).read_text("utf-8")
    )
    table: dict[Profession, _Prescribing] = {}
    for entry in raw["prescribers"]:
        profession = Profession(entry["profession"])  # an unknown name fails loudly
        competences = entry["competences"]
        if competences == "any":
            table[profession] = _Prescribing(True, {})
            continue
        labels = {str(code): str(label) for code, label in dict(competences).items()}
        if not all(len(code) == 3 and code.isascii() and code.isdigit() for code in labels):
            raise ValueError(f"{_DATA_FILE}: competence codes have 3 digits")
        table[profession] = _Prescribing(False, labels)
    return table


def may_prescribe(value: str) -> bool:
    """Whether the holder of this professional number prescribes medicines (ID-8, RX-2).

    Physicians and dentists always; a nurse-or-midwife number only under a competence code the
    reference data lists (a midwife's 003), so never in the 8-digit form; nobody else.
    """
    number = parse_professional(value)
    if number is None or number.profession is None:
        return False
    rule = _prescribing().get(number.profession)
    if rule is None:
        return False
    return rule.any_competence or (
        number.competence is not None and number.competence in rule.labels
    )


def describe(value: str) -> str | None:
    """The holder as shown beside the number: ``"physician (580)"``, ``"midwife (003)"``,
    ``"nurse or midwife (401)"``; the profession alone for the 8-digit form; ``None`` when the
    value is no professional number or its first digit gives no profession."""
    number = parse_professional(value)
    if number is None or number.profession is None:
        return None
    rule = _prescribing().get(number.profession)
    label = rule.labels.get(number.competence or "") if rule is not None else None
    name = label or number.profession.value.replace("-", " ")
    return f"{name} ({number.competence})" if number.competence else name
