"""The outbox: deliveries to the funds, written with the claim, taken by the forwarder.

A job is ``pending`` until a fund's answer is stored (``done``) or the attempts run out
(``failed``, parked for an operator). The forwarder *claims* due jobs in a short transaction of
its own: it raises ``attempts`` and takes a lease (a token and ``locked_until``). On PostgreSQL the
candidates are locked ``FOR UPDATE SKIP LOCKED``, so several workers take disjoint jobs without
waiting on each other; SQLite has one writer at a time, which gives the same guarantee. A worker
that dies leaves its lease to expire, and the job is taken again.

Every later change to a claimed job is a compare-and-set on its lease token and ``pending``
state: a worker whose lease ran out (another took the job, or the settlement poller stored the
answer first) changes nothing, so two workers can never both record an answer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import ColumnElement, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.claims.model import JobKind, JobState
from gateway.claims.records import aware, is_postgresql
from gateway.storage.direct import DirectStatement
from gateway.storage.tables import claim_jobs

j = claim_jobs
_INSERT_JOB: Final = DirectStatement(insert(j))  # every intake's (gateway.storage.direct)


def _lease_held(job_id: Any, token: Any) -> tuple[ColumnElement[bool], ...]:
    """The compare-and-set of every change to a claimed job: still pending, under this lease."""
    return (j.c.job_id == job_id, j.c.lease_token == token, j.c.state == JobState.PENDING.value)


# How nearly every delivery ends, on the driver: the fund answered (``finish``, a compare-and-set
# on the lease whose RETURNING tells whether it held), or the answer was stored (``close``).
_ENDED: Final[dict[str, Any]] = {
    "lease_token": None,
    "locked_until": None,
    "finished_at": bindparam("now"),
    "updated_at": bindparam("now"),
}

_FINISH: Final = DirectStatement(
    update(j)
    .where(*_lease_held(bindparam("job"), bindparam("token")))
    .values(
        state=JobState.DONE.value,
        outcome=bindparam("new_outcome"),
        last_error=bindparam("error"),
        **_ENDED,
    )
    .returning(j.c.job_id)
)
_CLOSE: Final = DirectStatement(
    update(j)
    .where(
        j.c.claim_id == bindparam("claim"),
        j.c.kind == bindparam("job_kind"),
        or_(j.c.state == JobState.PENDING.value, j.c.state == JobState.FAILED.value),
    )
    .values(state=JobState.DONE.value, outcome=bindparam("new_outcome"), **_ENDED)
)
_ERROR_LENGTH = 200


@dataclass(frozen=True)
class Job:
    job_id: str
    claim_id: str
    kind: JobKind
    fund_code: str
    state: JobState
    attempts: int
    next_attempt_at: datetime
    lease_token: str | None
    locked_until: datetime | None
    cancel_reason: str | None
    outcome: str | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


def _job(row: Any) -> Job:
    return Job(
        job_id=row.job_id,
        claim_id=row.claim_id,
        kind=JobKind(row.kind),
        fund_code=row.fund_code,
        state=JobState(row.state),
        attempts=row.attempts,
        next_attempt_at=aware(row.next_attempt_at),
        lease_token=row.lease_token,
        locked_until=None if row.locked_until is None else aware(row.locked_until),
        cancel_reason=row.cancel_reason,
        outcome=row.outcome,
        last_error=row.last_error,
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
        finished_at=None if row.finished_at is None else aware(row.finished_at),
    )


class Outbox:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def enqueue(
        self,
        claim_id: str,
        kind: JobKind,
        fund_code: str,
        now: datetime,
        *,
        cancel_reason: str | None = None,
        fresh: bool = False,
    ) -> bool:
        """A new pending job, due now; False if the claim already has a job of that kind (the
        unique index keeps one submission and one cancellation per claim). ``fresh``: the claim
        was created in this transaction, so no job can exist (no savepoint needed)."""
        values = {
            "job_id": uuid.uuid4().hex,
            "claim_id": claim_id,
            "kind": kind.value,
            "fund_code": fund_code,
            "state": JobState.PENDING.value,
            "attempts": 0,
            "next_attempt_at": now,
            "cancel_reason": cancel_reason,
            "created_at": now,
            "updated_at": now,
        }
        if fresh:
            await _INSERT_JOB.execute(self.session, values)
            return True
        try:
            async with self.session.begin_nested():
                await _INSERT_JOB.execute(self.session, values)
        except IntegrityError:
            return False
        return True

    async def get(self, job_id: str) -> Job | None:
        row = (await self.session.execute(select(j).where(j.c.job_id == job_id))).first()
        return None if row is None else _job(row)

    async def find(self, claim_id: str, kind: JobKind) -> Job | None:
        row = (
            await self.session.execute(
                select(j).where(j.c.claim_id == claim_id, j.c.kind == kind.value)
            )
        ).first()
        return None if row is None else _job(row)

    def _due(self, now: datetime) -> list[Any]:
        return [
            j.c.state == JobState.PENDING.value,
            j.c.next_attempt_at <= now,
            or_(j.c.locked_until.is_(None), j.c.locked_until <= now),
        ]

    async def claim_due(
        self,
        now: datetime,
        lease: timedelta,
        *,
        limit: int,
        fund_code: str | None = None,
        exclude_funds: tuple[str, ...] = (),
    ) -> list[Job]:
        """Take up to ``limit`` due jobs (of one fund, or of funds other than ``exclude_funds``):
        one more attempt each, leased to the caller until ``now + lease``. Commit at once."""
        where = self._due(now)
        if fund_code is not None:
            where.append(j.c.fund_code == fund_code)
        if exclude_funds:
            where.append(j.c.fund_code.not_in(exclude_funds))
        candidates = select(j.c.job_id).where(*where).order_by(j.c.next_attempt_at).limit(limit)
        if is_postgresql(self.session):
            # Several workers: each skips the rows another is claiming instead of waiting for them.
            candidates = candidates.with_for_update(skip_locked=True)
        due = candidates.cte("due")
        token = uuid.uuid4().hex
        rows = await self.session.execute(
            update(j)
            .where(j.c.job_id == due.c.job_id)
            .values(
                attempts=j.c.attempts + 1,
                lease_token=token,
                locked_until=now + lease,
                updated_at=now,
            )
            .returning(*j.c)
        )
        return [_job(row) for row in rows.all()]

    async def _compare_and_set(self, job: Job, **values: Any) -> bool:
        result = await self.session.execute(
            update(j).where(*_lease_held(job.job_id, job.lease_token)).values(**values)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def finish(
        self, job: Job, outcome: str, now: datetime, *, error: str | None = None
    ) -> bool:
        """The fund answered: done. False if the lease was lost (nothing changed)."""
        rows = await _FINISH.execute(
            self.session,
            {
                "job": job.job_id,
                "token": job.lease_token,
                "new_outcome": outcome,
                "error": None if error is None else error[:_ERROR_LENGTH],
                "now": now,
            },
        )
        return bool(rows)

    async def reschedule(self, job: Job, at: datetime, error: str, now: datetime) -> bool:
        """A transient failure: try again at ``at``, lease released."""
        return await self._compare_and_set(
            job,
            next_attempt_at=at,
            last_error=error[:_ERROR_LENGTH],
            lease_token=None,
            locked_until=None,
            updated_at=now,
        )

    async def park(self, job: Job, error: str, now: datetime) -> bool:
        """Attempts exhausted, or an answer no retry can change: failed, for an operator."""
        return await self._compare_and_set(
            job,
            state=JobState.FAILED.value,
            outcome="failed",
            last_error=error[:_ERROR_LENGTH],
            lease_token=None,
            locked_until=None,
            finished_at=now,
            updated_at=now,
        )

    async def close(self, claim_id: str, kind: JobKind, outcome: str, now: datetime) -> None:
        """The answer arrived another way (the settlement feed): a job still open is done,
        whoever holds its lease; that worker's later compare-and-set then changes nothing."""
        await _CLOSE.execute(
            self.session,
            {"claim": claim_id, "job_kind": kind.value, "new_outcome": outcome, "now": now},
        )

    async def requeue(self, job: Job, now: datetime, *, fund_code: str | None = None) -> bool:
        """An operator's retry of a failed job: pending again, due now, attempts from zero."""
        values: dict[str, Any] = {
            "state": JobState.PENDING.value,
            "attempts": 0,
            "next_attempt_at": now,
            "outcome": None,
            "lease_token": None,
            "locked_until": None,
            "finished_at": None,
            "updated_at": now,
        }
        if fund_code is not None:
            values["fund_code"] = fund_code
        result = await self.session.execute(
            update(j)
            .where(j.c.job_id == job.job_id, j.c.state == JobState.FAILED.value)
            .values(**values)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def jobs(
        self, *, state: JobState | None = None, claim_id: str | None = None, limit: int = 100
    ) -> list[Job]:
        query = select(j).order_by(j.c.created_at, j.c.job_id).limit(limit)
        if state is not None:
            query = query.where(j.c.state == state.value)
        if claim_id is not None:
            query = query.where(j.c.claim_id == claim_id)
        return [_job(row) for row in (await self.session.execute(query)).all()]


@dataclass(frozen=True)
class Backlog:
    """One fund's deliveries still owed: pending (to send, ``oldest`` the first queued) and
    failed (parked for an operator). The claims queue metrics (``gateway.ops``) read it."""

    fund_code: str
    pending: int
    failed: int
    oldest: datetime | None


async def backlog(session: AsyncSession) -> list[Backlog]:
    """Per fund, from the ``(state, ...)`` index: done jobs are never read."""
    query = (
        select(j.c.fund_code, j.c.state, func.count(), func.min(j.c.created_at))
        .where(j.c.state.in_([JobState.PENDING.value, JobState.FAILED.value]))
        .group_by(j.c.fund_code, j.c.state)
    )
    counts: dict[tuple[str, str], int] = {}
    oldest: dict[str, datetime] = {}
    for fund, state, count, first in (await session.execute(query)).all():
        counts[fund, state] = int(count)
        if state == JobState.PENDING.value and first is not None:
            oldest[fund] = aware(first)
    return [
        Backlog(
            fund,
            pending=counts.get((fund, JobState.PENDING.value), 0),
            failed=counts.get((fund, JobState.FAILED.value), 0),
            oldest=oldest.get(fund),
        )
        for fund in sorted({fund for fund, _state in counts})
    ]
