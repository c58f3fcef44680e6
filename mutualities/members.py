"""Who is insured with which fund, and with which status (domain ID-13, AT-1).

The built-in list (``data/members.json``) holds synthetic people, among them the gateway's demo
patients. ``--members FILE`` replaces it: JSON of the same shape, or CSV with a header
``ssin,fund,preferential`` (and optionally ``membership``). ``preferential`` is the
increased-reimbursement status (BIM/VT); ``membership`` the number the fund gives its member, by
which a claim may name the patient instead of the SSIN (hl7-be/eattestation ex11, with the fund as
the identifier's ``assigner``).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

_TRUE = frozenset({"1", "true", "yes", "y"})
_FALSE = frozenset({"", "0", "false", "no", "n"})
_MEMBERSHIP = re.compile(r"^\d{1,20}$")


@dataclass(frozen=True)
class Member:
    ssin: str
    fund: str
    preferential: bool
    membership: str | None = None


class MemberList:
    """Membership by SSIN; a person belongs to one fund at a time."""

    def __init__(self, members: list[Member]) -> None:
        self._by_ssin: dict[str, Member] = {}
        self._by_number: dict[tuple[str, str], Member] = {}
        for member in members:
            if member.ssin in self._by_ssin:
                raise ValueError("a member is listed twice")  # no SSIN in messages
            self._by_ssin[member.ssin] = member
            if member.membership is not None:
                if (member.fund, member.membership) in self._by_number:
                    raise ValueError(f"membership number given twice in fund {member.fund}")
                self._by_number[(member.fund, member.membership)] = member

    def lookup(self, fund: str, ssin: str) -> Member | None:
        """The member ``ssin`` of ``fund``, or None if not insured there."""
        member = self._by_ssin.get(ssin)
        return member if member is not None and member.fund == fund else None

    def by_membership(self, fund: str, number: str) -> Member | None:
        """The member to whom ``fund`` gave the membership ``number``, if any."""
        return self._by_number.get((fund, number))

    def __len__(self) -> int:
        return len(self._by_ssin)

    def __iter__(self) -> Iterator[Member]:
        return iter(self._by_ssin.values())


def load_members(path: Path | None = None) -> MemberList:
    if path is None:
        text = resources.files("mutualities").joinpath("data/members.json").read_text("utf-8")
        return MemberList(_from_json(text))
    text = path.read_text("utf-8")
    if path.suffix.lower() == ".csv":
        return MemberList(_from_csv(text))
    return MemberList(_from_json(text))


def _from_json(text: str) -> list[Member]:
    rows = json.loads(text)["members"]
    return [
        _member(str(r["ssin"]), str(r["fund"]), r.get("preferential", False), r.get("membership"))
        for r in rows
    ]


def _from_csv(text: str) -> list[Member]:
    rows = csv.DictReader(io.StringIO(text))
    return [
        _member(
            r["ssin"].strip(),
            r["fund"].strip(),
            r.get("preferential") or "",
            (r.get("membership") or "").strip() or None,
        )
        for r in rows
    ]


def _member(ssin: str, fund: str, preferential: object, membership: object = None) -> Member:
    if not (len(ssin) == 11 and ssin.isdigit()):
        raise ValueError("member SSIN must be 11 digits")
    if not (len(fund) == 3 and fund.isdigit()):
        raise ValueError(f"fund code must be 3 digits: {fund!r}")
    if isinstance(preferential, str):
        flag = preferential.strip().lower()
        if flag not in _TRUE | _FALSE:
            raise ValueError(f"preferential must be true or false: {preferential!r}")
        preferential = flag in _TRUE
    if membership is not None and not (
        isinstance(membership, str) and _MEMBERSHIP.match(membership)
    ):
        raise ValueError("membership number must be 1 to 20 digits")
    return Member(ssin, fund, bool(preferential), membership)
