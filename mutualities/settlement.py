"""Pricing at acknowledgement, settlement later (domain AT-1, AT-4).

Amounts are fixed when the fund acknowledges an attestation (legal fee, reimbursement and patient
share per service, from the tariff and the member's status at that moment), so a later change of
the tariff file never changes an attestation already given. The attestation settles
``settle_after`` later. Settlement is lazy: every read of the fund (the feed, a lookup, the admin
report, a cancellation) first settles whatever has fallen due, with the due time as settlement
time. That is the same answer as a background job would give, and it survives restarts because
the due time is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import structlog

from mutualities import responses
from mutualities.claims import ClaimRequest
from mutualities.records import Attestation, Line
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


async def settle_due(tx: FundTransaction, now: datetime) -> list[Attestation]:
    """Settle every acknowledged attestation whose time has come; each becomes one feed event."""
    settled = await tx.due_attestations(now)
    for attestation in settled:
        at = attestation.settle_due_at
        body = responses.encode(responses.settlement(attestation, at))
        seq = await tx.append_event(attestation.number, responses.FundEvent.SETTLED, body, now)
        await tx.mark_settled(attestation.number, at)
        log.info(
            "attestation_settled", fund=attestation.fund, attestation=attestation.number, seq=seq
        )
    return settled
