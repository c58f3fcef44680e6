"""One sickness fund: takes claims and cancellations, settles, reports (domain AT-1..AT-7).

The service between the thin HTTP routes and the store. Each write is one transaction that commits
before the route answers. Idempotency (AT-7): the answer to a key is stored with the attestation it
created, in the same transaction, and every later delivery of that key gets those bytes back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import structlog

from mutualities import responses, rules
from mutualities.claims import ClaimRequest, parse_cancel, parse_claim
from mutualities.errors import ErrorCode, Fault, ProtocolError
from mutualities.maximum_billing import MaximumBilling
from mutualities.members import Member, MemberList
from mutualities.records import Attestation, Status, attestation_number, brussels_date
from mutualities.settlement import price_lines, settle_due
from mutualities.store import FundStore, StoredRequest
from mutualities.tariffs import Tariff

Clock = Callable[[], datetime]
log = structlog.get_logger("mutualities.fund")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    replayed: bool = False


class Fund:
    def __init__(
        self,
        code: str,
        store: FundStore,
        *,
        tariffs: Mapping[str, Tariff],
        members: MemberList,
        maximum_billing: MaximumBilling,
        clock: Clock = utc_now,
        settle_after: timedelta = timedelta(seconds=2),
    ) -> None:
        self.code = code
        self.store = store
        self.tariffs = tariffs
        self.members = members
        self.maximum_billing = maximum_billing
        self.clock = clock
        self.settle_after = settle_after

    async def submit(
        self, key: str, body: dict[str, Any], faults_found: Sequence[Fault] = ()
    ) -> Answer:
        """Acknowledge or refuse a claim, once per idempotency key.

        ``faults_found``: what reading the message around the claim found wrong (they stop the
        other checks, as a malformed claim does).
        """
        now = self.clock()
        parsed = parse_claim(body)
        if faults_found:
            parsed = [*faults_found, *(parsed if isinstance(parsed, list) else [])]
        claim = parsed if isinstance(parsed, ClaimRequest) else None
        fingerprint = claim.fingerprint() if claim else _raw_fingerprint(body)
        async with self.store.transaction() as tx:
            stored = await tx.find_request(key)
            if stored is not None:
                if stored.fingerprint != fingerprint:
                    log.warning("idempotency_key_reused", fund=self.code)
                    body_409 = responses.operation_outcome(
                        ProtocolError.IDEMPOTENCY_KEY_REUSED,
                        "conflict",
                        "This Idempotency-Key was already used for a different claim",
                    )
                    return Answer(409, body_409)
                await tx.count_delivery(key)
                log.info("claim_replayed", fund=self.code, attestation=stored.attestation)
                return Answer(200, stored.response, replayed=True)

            faults: list[Fault] = parsed if isinstance(parsed, list) else []
            member = None
            if claim is not None:
                member = self._member(claim)
                if member is not None:
                    # Named by his membership number, the patient is attested under his SSIN.
                    claim = replace(claim, patient_ssin=member.ssin)
                days = (item.serviced for item in claim.items)
                attested = await tx.attested_services(
                    claim.provider_nihdi, claim.patient_ssin, days
                )
                faults = rules.check(
                    claim,
                    fund=self.code,
                    member=member,
                    tariffs=self.tariffs,
                    today=brussels_date(now),
                    attested=attested,
                )
            number: str | None = None
            if faults or claim is None or member is None:
                resource = responses.rejection(
                    faults, fund=self.code, created=now, claim=claim, key=key
                )
            else:
                number = attestation_number(
                    self.code, brussels_date(now), await tx.next_attestation_sequence()
                )
                lines = price_lines(claim, self.tariffs, preferential=member.preferential)
                await tx.insert_attestation(
                    Attestation(
                        number=number,
                        idempotency_key=key,
                        fund=self.code,
                        patient_ssin=claim.patient_ssin,
                        provider_nihdi=claim.provider_nihdi,
                        preferential=member.preferential,
                        claim_type=claim.type,
                        sub_type=claim.sub_type,
                        lines=tuple(lines),
                        status=Status.ACCEPTED,
                        accepted_at=now,
                        settle_due_at=now + self.settle_after,
                    )
                )
                resource = responses.acknowledgement(
                    claim, lines, number=number, fund=self.code, key=key, created=now
                )
            response = responses.encode(resource)
            codes = tuple(sorted({fault.code.value for fault in faults}))
            await tx.insert_request(
                StoredRequest(
                    idempotency_key=key,
                    fingerprint=fingerprint,
                    outcome="accepted" if number else "rejected",
                    attestation=number,
                    error_codes=codes,
                    response=response,
                    received_at=now,
                    deliveries=1,
                )
            )
        if number:
            log.info(
                "claim_accepted",
                fund=self.code,
                attestation=number,
                items=len(claim.items) if claim else 0,
            )
        else:
            log.info("claim_rejected", fund=self.code, errors=list(codes))
        return Answer(200, response)

    def _member(self, claim: ClaimRequest) -> Member | None:
        if claim.membership is not None:
            return self.members.by_membership(self.code, claim.membership)
        return self.members.lookup(self.code, claim.patient_ssin)

    async def cancel(self, body: dict[str, Any]) -> Answer:
        """Cancel an attestation (AT-6). Cancelling twice returns the first answer (AT-7)."""
        now = self.clock()
        parsed = parse_cancel(body)
        if isinstance(parsed, list):
            return self._cancel_refused(parsed, now)
        async with self.store.transaction() as tx:
            await settle_due(tx, now, self.maximum_billing)
            found = await tx.get_attestation(parsed.attestation)
            if found is None:
                path = f"Claim.identifier[{parsed.identifier_index}].value"
                return self._cancel_refused([Fault(ErrorCode.UNKNOWN_ATTESTATION, path)], now)
            attestation, earlier = found
            if earlier is not None:
                return Answer(200, earlier, replayed=True)
            response = responses.encode(responses.cancellation(attestation, parsed.reason, now))
            await tx.mark_cancelled(attestation.number, parsed.reason, now, response)
            await tx.append_event(attestation.number, responses.FundEvent.CANCELLED, response, now)
        log.info(
            "attestation_cancelled",
            fund=self.code,
            attestation=attestation.number,
            reason=parsed.reason,
        )
        return Answer(200, response)

    def _cancel_refused(self, faults: list[Fault], now: datetime) -> Answer:
        log.info("cancel_rejected", fund=self.code, errors=sorted({f.code.value for f in faults}))
        resource = responses.rejection(
            faults, fund=self.code, created=now, claim=None, key=None, subject="Cancellation"
        )
        return Answer(200, responses.encode(resource))

    async def current(self, key: str) -> bytes | None:
        """The latest ClaimResponse for a key: refusal, acknowledgement, settlement or cancellation."""
        async with self.store.transaction() as tx:
            await settle_due(tx, self.clock(), self.maximum_billing)
            stored = await tx.find_request(key)
            if stored is None:
                return None
            if stored.attestation is None:
                return stored.response
            return await tx.latest_event(stored.attestation) or stored.response

    async def events(self, since: int, limit: int) -> list[tuple[int, bytes]]:
        """Settled and cancelled ClaimResponses after cursor ``since``, oldest first."""
        async with self.store.transaction() as tx:
            await settle_due(tx, self.clock(), self.maximum_billing)
            return await tx.events_since(since, limit)

    async def report(self) -> dict[str, Any]:
        """What the fund received and did, for tests that prove exactly-once delivery."""
        async with self.store.transaction() as tx:
            await settle_due(tx, self.clock(), self.maximum_billing)
            requests = await tx.all_requests()
            attestations = await tx.all_attestations()
            event_count = await tx.event_count()
        deliveries = {r.idempotency_key: r.deliveries for r in requests}
        rejected = [r for r in requests if r.outcome == "rejected"]
        return {
            "fund": self.code,
            "counts": {
                "claims": len(requests),
                "deliveries": sum(deliveries.values()),
                "replays": sum(deliveries.values()) - len(requests),
                "accepted": len(attestations),
                "rejected": len(rejected),
                "settled": sum(1 for a in attestations if a.settled_at is not None),
                "cancelled": sum(1 for a in attestations if a.cancelled_at is not None),
                "events": event_count,
            },
            "attestations": [
                _attestation_report(a, deliveries[a.idempotency_key]) for a in attestations
            ],
            "rejections": [
                {
                    "idempotency_key": r.idempotency_key,
                    "errors": list(r.error_codes),
                    "deliveries": r.deliveries,
                    "received_at": _instant(r.received_at),
                }
                for r in rejected
            ],
        }


def _attestation_report(attestation: Attestation, deliveries: int) -> dict[str, Any]:
    return {
        "attestation": attestation.number,
        "idempotency_key": attestation.idempotency_key,
        "status": attestation.status.value,
        "deliveries": deliveries,
        "preferential": attestation.preferential,
        "legal_fee": str(attestation.legal_fee),
        "reimbursed": str(attestation.reimbursed),
        "patient_share": str(attestation.patient_share),
        "accepted_at": _instant(attestation.accepted_at),
        "settle_due_at": _instant(attestation.settle_due_at),
        "settled_at": _instant(attestation.settled_at),
        "cancelled_at": _instant(attestation.cancelled_at),
        "cancel_reason": attestation.cancel_reason,
    }


def _instant(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="milliseconds")


def _raw_fingerprint(body: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
