"""Belgian identifiers: SSIN, NIHDI, CBE, CNK and the Recip-e RID (domain ID-1..ID-15, RX-4).

Validators never raise: they answer ``True``/``False`` for any string. They only check form and
check digits; whether an identifier may be used in a given place is the profile's rule.
"""

from __future__ import annotations

import re
import secrets
from typing import Final

# ID-3: adding 2_000_000_000 changes the remainder (2e9 mod 97 = 68), so at most one rule matches.
_BORN_2000_OFFSET: Final = 2_000_000_000


def _is_digits(value: str, length: int) -> bool:
    # ASCII first: ``str.isdigit`` alone also accepts other scripts' digits and superscripts.
    return len(value) == length and value.isascii() and value.isdigit()


def _mod97_check(number: int) -> int:
    """97 - (n mod 97): a remainder of 0 gives 97, never 00 (ID-3, ID-7, ID-11)."""
    return 97 - number % 97


def _mod89_check(number: int) -> int:
    """89 - (n mod 89): NIHDI's second series of professional numbers (ID-7); 0 gives 89."""
    return 89 - number % 89


# --- SSIN (ID-1..ID-5) --------------------------------------------------------------------------


def normalise_ssin(value: str) -> str:
    """Strip the printed separators (``.``, ``-``, space): store digits only (ID-1, ID-5).

    ``YY.MM.DD-NNN.CC`` is the eID form, ``YYMMDD NNN CC`` the old SIS card form.
    """
    return value.replace(".", "").replace("-", "").replace(" ", "")


def is_valid_ssin(value: str) -> bool:
    """National register or BIS number with valid check digits (ID-1..ID-5).

    Accepts the printed forms (ID-5). BIS months (+20/+40) and unknown month/day ``00`` pass, and
    there is deliberately no calendar check: real numbers carry pseudo-dates (ID-4, ID-5).
    """
    digits = normalise_ssin(value)
    if not _is_digits(digits, 11):
        return False
    head, check = int(digits[:9]), int(digits[9:])
    # ID-2/ID-3: the first rule is for births before 2000, the second for births from 2000 on.
    return check in (_mod97_check(head), _mod97_check(_BORN_2000_OFFSET + head))


# --- NIHDI professional numbers (ID-6, ID-7; their meaning: ``fhir_profiles.nihdi``) ------------


def is_valid_nihdi_professional(value: str, *, check_digit: bool = True) -> bool:
    """An NIHDI professional number: 11 digits, or 8 for the deprecated form without the
    competence code (ID-6); no punctuation is allowed in FHIR.

    ``P NNNNN CC QQQ`` (ID-7): the two check digits ``CC`` belong to one of NIHDI's two series over
    the first six digits: ``97 - first6 mod 97``, or ``89 - first6 mod 89`` (NIHDI note I 2012/26:
    nurses and midwives since 2013, physicians since 1 April 2019, when the six-digit range ran
    out). No NIHDI text quoting the modulo-89 formula was found: it is the formula Belgian
    software applies (taktik/icure-backend ``KmehrExport.isNihiiValid``) and the analogue of the
    modulo-97 rule. ``check_digit`` switches the check off (setting ``nihdi_check_digit``).
    """
    if not (_is_digits(value, 11) or _is_digits(value, 8)):
        return False
    if not check_digit:
        return True
    head, check = int(value[:6]), int(value[6:8])
    return check in (_mod97_check(head), _mod89_check(head))


# --- CBE enterprise number (ID-10, ID-11) -------------------------------------------------------


def is_valid_cbe(value: str) -> bool:
    """10 digits starting with 0 or 1, last two = ``97 - first8 mod 97`` (ID-10, ID-11)."""
    if not _is_digits(value, 10) or value[0] not in "01":
        return False
    return int(value[8:]) == _mod97_check(int(value[:8]))


# --- CNK product code (ID-15) -------------------------------------------------------------------


def is_valid_cnk(value: str) -> bool:
    """Seven digits; whether the last one is a check digit is unverified (ID-15, Q3), so no more."""
    return _is_digits(value, 7)


# --- RID (RX-4, RX-5; open question Q1: keep the format in this one place) ----------------------

RID_PREFIX: Final = "BEP"
RID_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
RID_RANDOM_LENGTH: Final = 9
RID_PATTERN: Final = re.compile(r"^BEP[0-9A-Z]{9}$")


def normalise_rid(value: str) -> str | None:
    """The RID in upper case if ``value`` is one (case-insensitive, RX-4), else ``None``."""
    # ASCII first: ``str.upper`` maps some non-ASCII letters onto A-Z (e.g. the dotless i).
    if not value.isascii():
        return None
    upper = value.upper()
    return upper if RID_PATTERN.fullmatch(upper) else None


def new_rid() -> str:
    """A fresh RID: ``BEP`` + 9 characters of ``[0-9A-Z]`` from a CSPRNG (RX-4).

    Random, so it is neither sequential nor derived from the patient, and guessing one is hard.
    36**9 (about 1e14) values are not collision-free at 1e8 prescriptions a year: the store must
    enforce uniqueness and draw again on a clash (RX-4: never reused).
    """
    return RID_PREFIX + "".join(secrets.choice(RID_ALPHABET) for _ in range(RID_RANDOM_LENGTH))
