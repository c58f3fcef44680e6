"""Each fund's own store: SQLite file ``mutuality_<code>.db`` or PostgreSQL schema ``mutuality_<code>``.

SQLAlchemy 2 Core over async drivers (aiosqlite, psycopg). A mock has no migrations: tables are
created with ``metadata.create_all`` when a fund opens. Every write happens inside
:meth:`FundStore.transaction`, which serialises the fund's writers (an in-process lock, plus a row
lock on ``fund_state`` that makes several processes on one PostgreSQL schema take turns) and commits
before the caller answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mock_services.store import create_tables, in_schema, postgres_engine, sqlite_engine
from mutualities.records import Attestation, Line, Status
from mutualities.rules import Service
from mutualities.tables import (
    attestations,
    claim_requests,
    events,
    fund_state,
    household_counters,
    metadata,
    services,
)


@dataclass(frozen=True)
class StoredRequest:
    idempotency_key: str
    fingerprint: str
    outcome: str
    attestation: str | None
    error_codes: tuple[str, ...]
    response: bytes
    received_at: datetime
    deliveries: int


class FundStore:
    """The door to one fund's tables."""

    def __init__(self, fund: str, engine: AsyncEngine, schema: str | None = None) -> None:
        self.fund = fund
        self._engine = engine
        self._schema = schema
        self._lock = asyncio.Lock()
        self._ready = False

    async def open(self) -> None:
        """Create the schema and tables if missing (idempotent, also called lazily)."""
        if self._ready:
            return
        async with self._lock:
            if self._ready:
                return
            async with self._engine.begin() as conn:
                await create_tables(conn, metadata, self._schema)
                exists = await conn.scalar(
                    select(fund_state.c.fund).where(fund_state.c.fund == self.fund)
                )
                if exists is None:
                    await conn.execute(
                        insert(fund_state).values(fund=self.fund, last_attestation=0, last_event=0)
                    )
            self._ready = True

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FundTransaction]:
        """One serialised write transaction, committed when the block exits without error."""
        await self.open()
        async with self._lock, self._engine.begin() as conn:
            tx = FundTransaction(conn, self.fund)
            await tx.lock()
            yield tx


class FundTransaction:
    """Queries over one open transaction. Never commits: :meth:`FundStore.transaction` does."""

    def __init__(self, conn: AsyncConnection, fund: str) -> None:
        self._conn = conn
        self._fund = fund
        self._last_attestation = 0
        self._last_event = 0

    async def lock(self) -> None:
        # FOR UPDATE is a no-op on SQLite, where one process owns the file (see README).
        row = (
            await self._conn.execute(
                select(fund_state.c.last_attestation, fund_state.c.last_event)
                .where(fund_state.c.fund == self._fund)
                .with_for_update()
            )
        ).one()
        self._last_attestation, self._last_event = row.last_attestation, row.last_event

    async def next_attestation_sequence(self) -> int:
        self._last_attestation += 1
        await self._conn.execute(
            update(fund_state)
            .where(fund_state.c.fund == self._fund)
            .values(last_attestation=self._last_attestation)
        )
        return self._last_attestation

    # -- idempotency ------------------------------------------------------------------------------

    async def find_request(self, key: str) -> StoredRequest | None:
        row = (
            await self._conn.execute(
                select(claim_requests).where(claim_requests.c.idempotency_key == key)
            )
        ).one_or_none()
        return None if row is None else _request(row._mapping)

    async def count_delivery(self, key: str) -> None:
        await self._conn.execute(
            update(claim_requests)
            .where(claim_requests.c.idempotency_key == key)
            .values(deliveries=claim_requests.c.deliveries + 1)
        )

    async def insert_request(self, request: StoredRequest) -> None:
        await self._conn.execute(
            insert(claim_requests).values(
                idempotency_key=request.idempotency_key,
                fingerprint=request.fingerprint,
                outcome=request.outcome,
                attestation=request.attestation,
                error_codes=",".join(request.error_codes),
                response=request.response,
                received_at=request.received_at,
                deliveries=request.deliveries,
            )
        )

    # -- attestations -----------------------------------------------------------------------------

    async def attested_services(
        self, provider: str, patient: str, days: Iterable[date]
    ) -> set[Service]:
        rows = await self._conn.execute(
            select(services.c.service_date, services.c.code, services.c.count.label("n")).where(
                services.c.provider == provider,
                services.c.patient == patient,
                services.c.service_date.in_(sorted(set(days))),
                services.c.active.is_(True),
            )
        )
        return {(provider, patient, r.service_date, r.code, r.n) for r in rows}

    async def insert_attestation(self, attestation: Attestation) -> None:
        detail = {
            "type": attestation.claim_type,
            "subType": attestation.sub_type,
            "lines": [line.to_json() for line in attestation.lines],
        }
        await self._conn.execute(
            insert(attestations).values(
                number=attestation.number,
                idempotency_key=attestation.idempotency_key,
                provider=attestation.provider_nihdi,
                patient=attestation.patient_ssin,
                preferential=attestation.preferential,
                status=attestation.status.value,
                accepted_at=attestation.accepted_at,
                settle_due_at=attestation.settle_due_at,
                detail=orjson.dumps(detail),
            )
        )
        await self._conn.execute(
            insert(services),
            [
                {
                    "attestation": attestation.number,
                    "provider": attestation.provider_nihdi,
                    "patient": attestation.patient_ssin,
                    "service_date": line.serviced,
                    "code": line.code,
                    "count": line.count,
                    "active": True,
                }
                for line in attestation.lines
            ],
        )

    async def get_attestation(self, number: str) -> tuple[Attestation, bytes | None] | None:
        """The attestation and, if it was cancelled, the cancellation answer."""
        row = (
            await self._conn.execute(select(attestations).where(attestations.c.number == number))
        ).one_or_none()
        if row is None:
            return None
        return self._attestation(row._mapping), row.cancel_response

    async def due_attestations(self, now: datetime) -> list[Attestation]:
        rows = await self._conn.execute(
            select(attestations)
            .where(
                attestations.c.status == Status.ACCEPTED.value, attestations.c.settle_due_at <= now
            )
            .order_by(attestations.c.settle_due_at, attestations.c.number)
        )
        return [self._attestation(row._mapping) for row in rows]

    async def mark_settled(self, number: str, settled_at: datetime) -> None:
        await self._conn.execute(
            update(attestations)
            .where(attestations.c.number == number)
            .values(status=Status.SETTLED.value, settled_at=settled_at)
        )

    async def mark_cancelled(self, number: str, reason: str, at: datetime, response: bytes) -> None:
        await self._conn.execute(
            update(attestations)
            .where(attestations.c.number == number)
            .values(
                status=Status.CANCELLED.value,
                cancelled_at=at,
                cancel_reason=reason,
                cancel_response=response,
            )
        )
        # A cancelled service may be attested again (AT-6 reasons A..C: the provider corrects and resends).
        await self._conn.execute(
            update(services).where(services.c.attestation == number).values(active=False)
        )

    def _attestation(self, row: Any) -> Attestation:
        detail = orjson.loads(row["detail"])
        return Attestation(
            number=row["number"],
            idempotency_key=row["idempotency_key"],
            fund=self._fund,
            patient_ssin=row["patient"],
            provider_nihdi=row["provider"],
            preferential=bool(row["preferential"]),
            claim_type=detail["type"],
            sub_type=detail["subType"],
            lines=tuple(Line.from_json(line) for line in detail["lines"]),
            status=Status(row["status"]),
            accepted_at=row["accepted_at"],
            settle_due_at=row["settle_due_at"],
            settled_at=row["settled_at"],
            cancelled_at=row["cancelled_at"],
            cancel_reason=row["cancel_reason"],
        )

    # -- the settlement feed ----------------------------------------------------------------------

    async def append_event(self, number: str, kind: str, body: bytes, at: datetime) -> int:
        """Add to the feed. Sequence numbers come from the locked ``fund_state`` row, so commit order
        and sequence order agree: a poller never sees event N+1 before event N."""
        self._last_event += 1
        await self._conn.execute(
            update(fund_state)
            .where(fund_state.c.fund == self._fund)
            .values(last_event=self._last_event)
        )
        await self._conn.execute(
            insert(events).values(
                seq=self._last_event, attestation=number, kind=kind, body=body, created_at=at
            )
        )
        return self._last_event

    async def events_since(self, since: int, limit: int) -> list[tuple[int, bytes]]:
        rows = await self._conn.execute(
            select(events.c.seq, events.c.body)
            .where(events.c.seq > since)
            .order_by(events.c.seq)
            .limit(limit)
        )
        return [(row.seq, row.body) for row in rows]

    async def latest_event(self, number: str) -> bytes | None:
        row = (
            await self._conn.execute(
                select(events.c.body)
                .where(events.c.attestation == number)
                .order_by(events.c.seq.desc())
                .limit(1)
            )
        ).one_or_none()
        return None if row is None else bytes(row.body)

    # -- maximum billing --------------------------------------------------------------------------

    async def household_counter(self, household: str, year: int) -> tuple[int, date | None] | None:
        """The household's patient shares counted in ``year`` (cents) and when they reached the
        ceiling, or None before its first settlement of that year."""
        row = (
            await self._conn.execute(
                select(household_counters.c.counted_cents, household_counters.c.reached_on).where(
                    household_counters.c.household == household, household_counters.c.year == year
                )
            )
        ).one_or_none()
        return None if row is None else (row.counted_cents, row.reached_on)

    async def save_household_counter(
        self, household: str, year: int, counted_cents: int, reached_on: date | None, *, new: bool
    ) -> None:
        values = {"counted_cents": counted_cents, "reached_on": reached_on}
        if new:
            await self._conn.execute(
                insert(household_counters).values(household=household, year=year, **values)
            )
        else:
            await self._conn.execute(
                update(household_counters)
                .where(
                    household_counters.c.household == household, household_counters.c.year == year
                )
                .values(**values)
            )

    # -- what tests count -------------------------------------------------------------------------

    async def all_requests(self) -> list[StoredRequest]:
        rows = await self._conn.execute(
            select(claim_requests).order_by(claim_requests.c.received_at)
        )
        return [_request(row._mapping) for row in rows]

    async def all_attestations(self) -> list[Attestation]:
        rows = await self._conn.execute(select(attestations).order_by(attestations.c.number))
        return [self._attestation(row._mapping) for row in rows]

    async def event_count(self) -> int:
        return int(await self._conn.scalar(select(func.count()).select_from(events)) or 0)


def _request(row: Any) -> StoredRequest:
    codes = row["error_codes"]
    return StoredRequest(
        idempotency_key=row["idempotency_key"],
        fingerprint=row["fingerprint"],
        outcome=row["outcome"],
        attestation=row["attestation"],
        error_codes=tuple(codes.split(",")) if codes else (),
        response=bytes(row["response"]),
        received_at=row["received_at"],
        deliveries=row["deliveries"],
    )


class Stores:
    """The stores of the funds one process serves, and the engines behind them."""

    def __init__(self, stores: dict[str, FundStore], engines: list[AsyncEngine]) -> None:
        self.by_fund = stores
        self._engines = engines

    async def open(self) -> None:
        for store in self.by_fund.values():
            await store.open()

    async def close(self) -> None:
        for engine in self._engines:
            await engine.dispose()


def open_stores(codes: Iterable[str], *, data_dir: Path, database_url: str | None = None) -> Stores:
    """A SQLite file per fund under ``data_dir``, or one PostgreSQL schema per fund at ``database_url``."""
    codes = list(codes)
    if database_url is not None:
        engine = postgres_engine(database_url)
        stores = {
            code: FundStore(
                code, in_schema(engine, f"mutuality_{code}"), schema=f"mutuality_{code}"
            )
            for code in codes
        }
        return Stores(stores, [engine])
    engines = {code: sqlite_engine(data_dir / f"mutuality_{code}.db") for code in codes}
    return Stores(
        {code: FundStore(code, engine) for code, engine in engines.items()}, list(engines.values())
    )
