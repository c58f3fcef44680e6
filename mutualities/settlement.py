"""Pricing at acknowledgement, settlement later with maximum billing (domain AT-1, AT-4).

Amounts are fixed when the fund acknowledges an attestation (legal fee, reimbursement and patient
share per service, from the tariff and the member's status at that moment), so a later change of
the tariff file never changes an attestation already given. The attestation settles
``settle_after`` later. Settlement is lazy: every read of the fund (the feed, a lookup, the admin
report, a cancellation) first settles whatever has fallen due, with the due time as settlement
time. That is the same answer as a background job would give, and it survives restarts because
the due time is stored.

At settlement the household's maximum-billing counter of each year is read, moved on by this
attestation's patient shares and written back in the same transaction (the fund's transactions
take turns, so two settlements never count from the same total). What the counter makes the fund
pay on top (``maximum_billing.cap``) goes into the reimbursement; the settlement states the counter
in the extension ``urn:ehealth-gateway:maximum-billing`` (mutualities/README.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog

from mutualities import responses, systems
from mutualities.claims import ClaimRequest
from mutualities.households import Household
from mutualities.maximum_billing import (
    ZERO,
    Capped,
    Counter,
    MaximumBilling,
    cap,
    from_cents,
    to_cents,
)
from mutualities.records import Attestation, Line, brussels_date
from mutualities.store import FundTransaction
from mutualities.tariffs import Tariff

log = structlog.get_logger("mutualities.settlement")


def price_lines(
    claim: ClaimRequest, tariffs: Mapping[str, Tariff], *, preferential: bool
) -> list[Line]:
    """Legal fee, reimbursement and patient share of each service: the unit amounts times the count."""
    lines = []
    for item in claim.items:
        tariff = tariffs[item.code]
        lines.append(
            Line(
                sequence=item.sequence,
                code=item.code,
                serviced=item.serviced,
                count=item.count,
                legal_fee=tariff.fee * item.count,
                reimbursed=tariff.reimbursement(preferential) * item.count,
                patient_share=tariff.patient_share(preferential) * item.count,
            )
        )
    return lines


async def settle_due(
    tx: FundTransaction, now: datetime, billing: MaximumBilling
) -> list[Attestation]:
    """Settle every acknowledged attestation whose time has come; each becomes one feed event."""
    settled = await tx.due_attestations(now)
    for attestation in settled:
        at = attestation.settle_due_at
        household, ceiling = billing.household(
            attestation.fund, attestation.patient_ssin, preferential=attestation.preferential
        )
        capped = await _count(tx, attestation, household, ceiling, at)
        resource = responses.settlement(replace(attestation, lines=capped.lines), at)
        _state(resource, capped, household)
        body = responses.encode(resource)
        seq = await tx.append_event(attestation.number, responses.FundEvent.SETTLED, body, now)
        await tx.mark_settled(attestation.number, at)
        log.info(
            "attestation_settled",
            fund=attestation.fund,
            attestation=attestation.number,
            seq=seq,
            maximum_billing=str(sum(capped.paid_by_cap.values(), ZERO)),
        )
    return settled


async def _count(
    tx: FundTransaction,
    attestation: Attestation,
    household: Household,
    ceiling: Decimal,
    at: datetime,
) -> Capped:
    """Move the household's counters on by the attestation's shares, and apply the cap."""
    before: dict[int, Counter] = {}
    known: set[int] = set()
    for year in sorted({line.serviced.year for line in attestation.lines}):
        row = await tx.household_counter(household.key, year)
        if row is not None:
            known.add(year)
            before[year] = Counter(from_cents(row[0]), row[1])
    ordered = sorted(attestation.lines, key=lambda line: line.sequence)
    capped = cap(ordered, before, ceiling, on=brussels_date(at))
    for year, counter in capped.counters.items():
        await tx.save_household_counter(
            household.key,
            year,
            to_cents(counter.counted),
            counter.reached_on,
            new=year not in known,
        )
    return capped


def _state(resource: dict[str, Any], capped: Capped, household: Household) -> None:
    """Say on the settlement what maximum billing did: per service the share it paid (when it paid
    any), in the totals, and the household's counter of each year of the services."""
    for item in resource.get("addItem") or resource.get("item") or []:
        sequences = item.get("itemSequence") or []
        sequences = sequences if isinstance(sequences, list) else [sequences]
        paid = sum((capped.paid_by_cap.get(s, ZERO) for s in sequences), ZERO)
        if paid > 0:
            item["adjudication"].append(_paid_by_cap(paid))
    total = sum(capped.paid_by_cap.values(), ZERO)
    if total > 0:
        resource["total"].append(_paid_by_cap(total))
        resource["disposition"] += (
            "; the household reached its maximum billing ceiling: the fund also pays the patient"
            " share above it"
        )
    resource["extension"] = [
        *resource.get("extension", []),
        *(
            _counter(year, counter, capped.ceiling, household)
            for year, counter in sorted(capped.counters.items())
        ),
    ]


def _counter(year: int, counter: Counter, ceiling: Decimal, household: Household) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"url": "year", "valueInteger": year}]
    if household.income_bracket is not None:
        parts.append({"url": "incomeBracket", "valueCode": household.income_bracket})
    parts += [
        {"url": "ceiling", "valueMoney": _money(ceiling)},
        {"url": "runningTotal", "valueMoney": _money(counter.counted)},
        {"url": "householdPaid", "valueMoney": _money(min(counter.counted, ceiling))},
    ]
    if counter.reached_on is not None:
        parts.append({"url": "reachedOn", "valueDate": counter.reached_on.isoformat()})
    return {"url": systems.MAXIMUM_BILLING, "extension": parts}


def _paid_by_cap(amount: Decimal) -> dict[str, Any]:
    return {
        "category": {
            "coding": [
                {
                    "system": systems.GATEWAY_ADJUDICATION,
                    "code": "maximum-billing",
                    "display": "Patient share paid under maximum billing",
                }
            ]
        },
        "amount": _money(amount),
    }


def _money(amount: Decimal) -> dict[str, Any]:
    return {"value": float(amount), "currency": "EUR"}
