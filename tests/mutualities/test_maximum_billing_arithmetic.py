"""The maximum-billing arithmetic alone, over generated services (mutualities/maximum_billing.py)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from mutualities.households import Household
from mutualities.maximum_billing import ZERO, Counter, cap, load_ceilings
from mutualities.records import Line

DAY = date(2025, 6, 1)
cents = st.integers(min_value=0, max_value=60_000).map(lambda c: Decimal(c) / 100)


def line(sequence: int, share: Decimal, year: int = 2025) -> Line:
    return Line(
        sequence=sequence,
        code="101032",
        serviced=date(year, 3, 1),
        count=1,
        legal_fee=share + Decimal("20.00"),
        reimbursed=Decimal("20.00"),
        patient_share=share,
    )


@given(
    shares=st.lists(cents, min_size=1, max_size=12),
    before=cents,
    ceiling=cents,
)
def test_the_household_never_pays_beyond_its_ceiling(
    shares: list[Decimal], before: Decimal, ceiling: Decimal
) -> None:
    lines = [line(i + 1, share) for i, share in enumerate(shares)]
    reached = DAY if before >= ceiling else None
    capped = cap(lines, {2025: Counter(before, reached)}, ceiling, on=date(2025, 7, 1))

    paid = sum((capped_line.patient_share for capped_line in capped.lines), ZERO)
    # what the household pays now is what is left below the ceiling, or all of it
    assert paid == min(before + sum(shares, ZERO), ceiling) - min(before, ceiling)
    for original, capped_line in zip(lines, capped.lines, strict=True):
        refund = capped.paid_by_cap[original.sequence]
        assert ZERO <= refund <= original.patient_share
        # the fund pays what the patient no longer does: the legal fee is always covered once
        assert capped_line.reimbursed + capped_line.patient_share == original.legal_fee
        assert capped_line.reimbursed == original.reimbursed + refund
    after = capped.counters[2025]
    assert after.counted == before + sum(shares, ZERO)
    if reached is not None:
        assert after.reached_on == reached
    elif after.counted >= ceiling:
        assert after.reached_on == date(2025, 7, 1)
    else:
        assert after.reached_on is None


@given(shares=st.lists(cents, min_size=1, max_size=12), ceiling=cents)
def test_one_claim_or_many_the_household_pays_the_same(
    shares: list[Decimal], ceiling: Decimal
) -> None:
    lines = [line(i + 1, share) for i, share in enumerate(shares)]
    at_once = cap(lines, {}, ceiling, on=DAY)
    counters: dict[int, Counter] = {}
    one_by_one = ZERO
    for single in lines:
        capped = cap([single], counters, ceiling, on=DAY)
        counters = dict(capped.counters)
        one_by_one += capped.lines[0].patient_share
    assert one_by_one == sum((c.patient_share for c in at_once.lines), ZERO)
    assert counters == dict(at_once.counters)


def test_each_year_has_its_own_counter() -> None:
    full = {2025: Counter(Decimal("300.00"), date(2025, 10, 1))}
    capped = cap(
        [line(1, Decimal("12.00"), 2025), line(2, Decimal("12.00"), 2026)],
        full,
        Decimal("254.99"),
        on=date(2026, 1, 3),
    )
    assert capped.paid_by_cap == {1: Decimal("12.00"), 2: ZERO}
    assert capped.counters[2025] == Counter(Decimal("312.00"), date(2025, 10, 1))
    assert capped.counters[2026] == Counter(Decimal("12.00"), None)


def test_the_ceiling_of_a_household() -> None:
    ceilings = load_ceilings()
    assert ceilings.of(Household("h", "100", "1", preferential=False)) == Decimal("254.99")
    assert ceilings.of(Household("h", "100", "6", preferential=False)) == Decimal("2067.66")
    # with increased reimbursement: the social ceiling, unless the income's is lower
    assert ceilings.of(Household("h", "100", "4", preferential=True)) == Decimal("516.92")
    assert ceilings.of(Household("h", "100", "1", preferential=True)) == Decimal("254.99")
    # an income the fund does not know: the highest
    assert ceilings.of(Household("h", "100", None, preferential=False)) == Decimal("2067.66")
