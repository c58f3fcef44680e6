"""Maximum billing (maximum à facturer, maximumfactuur): the arithmetic, without any storage.

Each calendar year a fund adds up the patient shares of a household's services. Once that running
total reaches the ceiling of the household's income bracket, the fund also pays what the patient
would have paid: of the service that crosses the ceiling only the part above it, of every later one
the whole share. The year is the service's (a ``servicedDate`` is a Europe/Brussels calendar date),
so the counter starts afresh at the Brussels New Year. The shares counted are the ones the tariff
gives the member: a member with increased reimbursement (BIM/VT) keeps his lower share, and it is
that lower share that counts.

The ceilings (``data/maximum_billing.json``) are the official figures of one year; the mock
applies them to every year (a real fund uses each year's indexed table).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from importlib import resources
from pathlib import Path

from mutualities.households import Household, Households
from mutualities.records import Line

ZERO = Decimal("0.00")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Ceilings:
    """The ceiling per income bracket, and the fixed one of a preferential household."""

    year: int
    source: str
    by_bracket: Mapping[str, Decimal]
    preferential: Decimal

    def of(self, household: Household) -> Decimal:
        # An income the fund does not know counts as the highest: it never pays before it must.
        income = self.by_bracket.get(household.income_bracket or "", max(self.by_bracket.values()))
        return min(income, self.preferential) if household.preferential else income


def load_ceilings(path: Path | None = None) -> Ceilings:
    if path is None:
        file = resources.files("mutualities").joinpath("data/maximum_billing.json")
        text = file.read_text("utf-8")
    else:
        text = path.read_text("utf-8")
    data = json.loads(text)
    brackets = {str(row["code"]): _amount(row["ceiling"]) for row in data["brackets"]}
    if not brackets:
        raise ValueError("maximum billing needs at least one income bracket")
    return Ceilings(
        year=int(data["year"]),
        source=str(data["source"]),
        by_bracket=brackets,
        preferential=_amount(data["preferential"]["ceiling"]),
    )


@dataclass(frozen=True)
class Counter:
    """A household's year so far: its patient shares counted, and when they reached the ceiling."""

    counted: Decimal = ZERO
    reached_on: date | None = None


@dataclass(frozen=True)
class Capped:
    """An attestation's lines once maximum billing is applied, and the counters it leaves."""

    lines: tuple[Line, ...]
    paid_by_cap: Mapping[int, Decimal]
    """Per line ``sequence``: the part of its patient share maximum billing pays (0 below the cap)."""
    counters: Mapping[int, Counter]
    """Per calendar year of the lines' services: the household's counter after this attestation."""
    ceiling: Decimal


def cap(
    lines: Iterable[Line], counters: Mapping[int, Counter], ceiling: Decimal, *, on: date
) -> Capped:
    """Apply maximum billing to ``lines`` (in order) given the household's ``counters`` by year.

    ``on`` is the settlement's Brussels date: the date a ceiling reached here was reached.
    """
    after = dict(counters)
    adjusted: list[Line] = []
    paid_by_cap: dict[int, Decimal] = {}
    for line in lines:
        year = line.serviced.year
        before = after.get(year, Counter())
        counted = before.counted + line.patient_share
        # What the household pays is its running total up to the ceiling, never above.
        patient_pays = min(counted, ceiling) - min(before.counted, ceiling)
        refund = line.patient_share - patient_pays
        reached = before.reached_on or (on if counted >= ceiling else None)
        after[year] = Counter(counted, reached)
        paid_by_cap[line.sequence] = refund
        adjusted.append(
            replace(line, reimbursed=line.reimbursed + refund, patient_share=patient_pays)
        )
    return Capped(tuple(adjusted), paid_by_cap, after, ceiling)


def to_cents(amount: Decimal) -> int:
    return int((amount / CENT).to_integral_value())


def from_cents(cents: int) -> Decimal:
    return (Decimal(cents) * CENT).quantize(CENT)


def _amount(text: str) -> Decimal:
    value = Decimal(text).quantize(CENT)
    if value < 0:
        raise ValueError("a ceiling cannot be negative")
    return value


@dataclass(frozen=True)
class MaximumBilling:
    """One process's rules: who lives with whom, and the ceilings."""

    households: Households
    ceilings: Ceilings

    def household(self, fund: str, ssin: str, *, preferential: bool) -> tuple[Household, Decimal]:
        """The member's household and its ceiling."""
        household = self.households.of(fund, ssin, preferential=preferential)
        return household, self.ceilings.of(household)
