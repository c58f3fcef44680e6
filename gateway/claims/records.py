"""Queries on the claims bookkeeping tables: one row per claim, the duplicate window, feed cursors.

The repository of ``claims``, ``claim_services``, ``fund_cursors`` and ``fund_events``
(``gateway.storage.tables``); the outbox is ``gateway.claims.outbox``. It flushes, never commits.

Lock order, everywhere a transaction touches one claim: its ``claims`` row first (``get(...,
lock=True)``), then its jobs, then its resources. Intake, forwarder and settlement poller all follow
it, so they queue on the row instead of deadlocking on PostgreSQL; SQLite has one writer anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.claims.model import State
from gateway.storage.direct import DirectStatement
from gateway.storage.tables import claim_services, claims, fund_cursors, fund_events

# The statements of every intake, on the driver (gateway.storage.direct: issue 18).
_INSERT_CLAIM: Final = DirectStatement(insert(claims))
_BY_REQUEST_KEY: Final = DirectStatement(
    select(claims).where(claims.c.request_key == bindparam("request_key"))
)
_ADVISORY_LOCK: Final = DirectStatement(
    select(func.pg_advisory_xact_lock(bindparam("key")).label("locked"))
)
_INSERT_SERVICE: Final = DirectStatement(insert(claim_services))
# ... and of every answer a worker stores (``get``, ``set_state``).
_BY_ID = select(claims).where(claims.c.claim_id == bindparam("claim_id"))
_GET: Final = DirectStatement(_BY_ID)
_LOCK: Final = DirectStatement(_BY_ID, postgresql=_BY_ID.with_for_update())
_SET_STATE: Final = DirectStatement(
    update(claims)
    .where(claims.c.claim_id == bindparam("claim_id"))
    .values(  # an attestation number or a response id, once known, is kept (None: unchanged)
        state=bindparam("new_state"),
        updated_at=bindparam("now"),
        attestation=func.coalesce(bindparam("new_attestation"), claims.c.attestation),
        response_id=func.coalesce(bindparam("new_response_id"), claims.c.response_id),
    )
)


@dataclass(frozen=True)
class ClaimRow:
    claim_id: str
    provider_nihdi: str
    fund_code: str
    state: State
    fingerprint: str
    attestation: str | None
    response_id: str | None
    created_at: datetime


def aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _row(row: Any) -> ClaimRow | None:
    if row is None:
        return None
    return ClaimRow(
        claim_id=row.claim_id,
        provider_nihdi=row.provider_nihdi,
        fund_code=row.fund_code,
        state=State(row.state),
        fingerprint=row.fingerprint,
        attestation=row.attestation,
        response_id=row.response_id,
        created_at=aware(row.created_at),
    )


def is_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


class ClaimRecords:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- one row per claim -----------------------------------------------------------------------

    async def insert(
        self,
        claim_id: str,
        *,
        provider_nihdi: str,
        request_key: str,
        fund_code: str,
        fingerprint: str,
        now: datetime,
    ) -> None:
        await _INSERT_CLAIM.execute(
            self.session,
            {
                "claim_id": claim_id,
                "provider_nihdi": provider_nihdi,
                "request_key": request_key,
                "fund_code": fund_code,
                "state": State.QUEUED.value,
                "fingerprint": fingerprint,
                "attestation": None,
                "created_at": now,
                "updated_at": now,
            },
        )

    async def get(self, claim_id: str, *, lock: bool = False) -> ClaimRow | None:
        """The claim's row; ``lock`` takes its row lock (PostgreSQL) for the rest of the
        transaction, the first step of every change to the claim (module docstring)."""
        rows = await (_LOCK if lock else _GET).execute(self.session, {"claim_id": claim_id})
        return _row(rows[0] if rows else None)

    async def by_request_key(self, request_key: str) -> ClaimRow | None:
        """The claim a provider's request key (its identifier hash) names, if any (AT-7)."""
        rows = await _BY_REQUEST_KEY.execute(self.session, {"request_key": request_key})
        return _row(rows[0] if rows else None)

    async def set_state(
        self,
        claim_id: str,
        state: State,
        *,
        now: datetime,
        attestation: str | None = None,
        response_id: str | None = None,
    ) -> None:
        await _SET_STATE.execute(
            self.session,
            {
                "claim_id": claim_id,
                "new_state": state.value,
                "now": now,
                "new_attestation": attestation,
                "new_response_id": response_id,
            },
        )

    async def count_by_state(self) -> dict[str, int]:
        rows = await self.session.execute(
            select(claims.c.state, func.count()).group_by(claims.c.state)
        )
        return {state: int(count) for state, count in rows.all()}

    # -- AT-7: the duplicate window --------------------------------------------------------------

    async def serialise_services(self, provider_patient_hmac: str) -> None:
        """Make concurrent intakes for one provider and patient take turns (PostgreSQL advisory
        lock until commit), so that two different request keys for the same service cannot both
        pass the duplicate check. SQLite needs nothing: a transaction holds the one write lock."""
        if is_postgresql(self.session):
            key = int.from_bytes(bytes.fromhex(provider_patient_hmac[:16]), "big", signed=True)
            await _ADVISORY_LOCK.execute(self.session, {"key": key})

    async def add_services(self, claim_id: str, hmacs: Iterable[str], now: datetime) -> None:
        rows = [
            {"claim_id": claim_id, "service_hmac": h, "created_at": now}
            for h in dict.fromkeys(hmacs)
        ]
        await _INSERT_SERVICE.execute_each(self.session, rows)

    async def recent_services(self, hmacs: Sequence[str], since: datetime) -> dict[str, str]:
        """``service hmac -> claim id`` of attestations of these services created after ``since``
        that still stand: a refused claim attested nothing, and a cancellation frees the service
        (mutualities README, "Cancelling")."""
        if not hmacs:
            return {}
        rows = await self.session.execute(
            select(claim_services.c.service_hmac, claim_services.c.claim_id)
            .join(claims, claims.c.claim_id == claim_services.c.claim_id)
            .where(
                claim_services.c.service_hmac.in_(list(hmacs)),
                claim_services.c.created_at > since,
                claims.c.state.not_in([State.REFUSED.value, State.CANCELLED.value]),
            )
            .order_by(claim_services.c.created_at)
        )
        found: dict[str, str] = {}
        for service_hmac, claim_id in rows.all():
            found.setdefault(service_hmac, claim_id)
        return found

    # -- the settlement feed ---------------------------------------------------------------------

    async def cursor(self, fund_code: str) -> int:
        value = await self.session.scalar(
            select(fund_cursors.c.cursor).where(fund_cursors.c.fund_code == fund_code)
        )
        return int(value or 0)

    async def advance_cursor(self, fund_code: str, old: int, new: int, now: datetime) -> bool:
        """Compare-and-set: move the cursor from ``old`` to ``new``; False if another poller moved
        it first (then this one's page is not applied)."""
        result = await self.session.execute(
            update(fund_cursors)
            .where(fund_cursors.c.fund_code == fund_code, fund_cursors.c.cursor == old)
            .values(cursor=new, updated_at=now)
        )
        if result.rowcount:  # type: ignore[attr-defined]
            return True
        if old != 0 or await self.session.scalar(
            select(func.count())
            .select_from(fund_cursors)
            .where(fund_cursors.c.fund_code == fund_code)
        ):
            return False
        try:
            async with self.session.begin_nested():
                await self.session.execute(
                    insert(fund_cursors).values(fund_code=fund_code, cursor=new, updated_at=now)
                )
        except IntegrityError:
            return False
        return True

    async def first_time(
        self, fund_code: str, event_id: str, claim_id: str | None, now: datetime
    ) -> bool:
        """Record a feed event as applied; False if it was applied before (idempotent on its id)."""
        try:
            async with self.session.begin_nested():
                await self.session.execute(
                    insert(fund_events).values(
                        fund_code=fund_code, event_id=event_id, claim_id=claim_id, applied_at=now
                    )
                )
        except IntegrityError:
            return False
        return True
