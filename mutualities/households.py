"""Who shares a maximum-billing counter: the fund's households and their income brackets.

Maximum billing counts the patient shares of a household, the people who live together on
1 January (in Belgium the National Register's household composition), against a ceiling set by the
household's net taxable income. The fund never learns that income, only its bracket. The built-in
list (``data/households.json``) holds the built-in members' households; ``--households FILE``
replaces it. A member listed in no household counts alone, as a household whose income the fund
does not know.

A household is *preferential* when one of its members has the increased reimbursement (BIM/VT):
its ceiling is then the fixed social one unless its income bracket's is lower
(``maximum_billing.Ceilings``). [A] In Belgium only the beneficiary, his partner and their
dependants form that social household; the mock gives it to the whole household.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mutualities.members import MemberList


@dataclass(frozen=True)
class Household:
    key: str
    """The fund's own name of the household's counter (never shown outside the fund)."""
    fund: str
    income_bracket: str | None
    """The bracket code of ``data/maximum_billing.json``; None when the fund does not know it."""
    preferential: bool


class Households:
    """The households of one process's funds, by member."""

    def __init__(self, households: Iterable[tuple[Household, Iterable[str]]]) -> None:
        self._by_member: dict[tuple[str, str], Household] = {}
        keys: set[str] = set()
        for household, ssins in households:
            if household.key in keys:
                raise ValueError(f"household {household.key!r} is listed twice")
            keys.add(household.key)
            for ssin in ssins:
                if (household.fund, ssin) in self._by_member:
                    # no SSIN in the message: the key names the second household
                    raise ValueError(f"a member of {household.key!r} is in another household")
                self._by_member[(household.fund, ssin)] = household

    def of(self, fund: str, ssin: str, *, preferential: bool) -> Household:
        """The household of member ``ssin`` of ``fund``; alone, income unknown, if none lists him."""
        listed = self._by_member.get((fund, ssin))
        if listed is not None:
            return listed
        return Household(f"member-{ssin}", fund, None, preferential)


def load_households(members: MemberList, path: Path | None = None) -> Households:
    """The households in ``path`` (the JSON shape of the built-in file), or the built-in ones."""
    if path is None:
        file = resources.files("mutualities").joinpath("data/households.json")
        text = file.read_text("utf-8")
    else:
        text = path.read_text("utf-8")
    return Households(_household(row, members) for row in json.loads(text)["households"])


def _household(row: dict[str, object], members: MemberList) -> tuple[Household, list[str]]:
    key, fund, bracket = str(row["id"]), str(row["fund"]), row.get("income_bracket")
    ssins = row["members"]
    if not (isinstance(ssins, list) and ssins and all(isinstance(s, str) for s in ssins)):
        raise ValueError(f"household {key!r}: members must be a list of SSINs")
    if bracket is not None and not isinstance(bracket, str):
        raise ValueError(f"household {key!r}: income_bracket must be a code or null")
    # Only the people insured with this fund count here; one listed but insured elsewhere has his
    # own fund's counter (the real funds exchange their counters; the mock does not).
    insured = [member for s in ssins if (member := members.lookup(fund, s)) is not None]
    preferential = any(member.preferential for member in insured)
    return Household(key, fund, bracket, preferential), [m.ssin for m in insured]
