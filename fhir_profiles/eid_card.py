"""The number of a Belgian identity card (eID, Kids-ID): the proof of presence's card (CO-2, RX-18).

12 digits, printed ``NNN-NNNNNNN-CC`` (sent without separators): ``CC`` is the first ten digits
modulo 97, and a remainder of 0 is written ``97``, never ``00``. Source: python-stdnum
``stdnum.be.eid``, which cites the National Register's IT instruction 195
("Identiteitsbewijs"); the card number names one card, not
the person (that is the SSIN, ID-1). The check only says the number was typed or read correctly:
whether the card is the patient's current one is the national register's answer
(``gateway.presence``). ISI+ cards carry another numbering and are not accepted [A].
"""

from __future__ import annotations

import re
from typing import Final

_DIGITS: Final = re.compile(r"^[0-9]{12}$")
# What an error message says a card number must be (never the value that was sent).
CARD_NUMBER_TEXT: Final = (
    "an eID card number: 12 digits, the last two the modulo-97 check of the first ten"
)


def check_digits(first_ten: str) -> str:
    """The two check digits of a card number's first ten digits: mod 97, 0 written as 97."""
    remainder = int(first_ten) % 97
    return f"{remainder or 97:02d}"


def is_valid_card_number(value: str) -> bool:
    """Exactly 12 digits (the wire form: no separators) whose last two check the first ten."""
    return _DIGITS.match(value) is not None and value[10:] == check_digits(value[:10])
