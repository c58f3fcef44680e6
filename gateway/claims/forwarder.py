"""The forwarder: takes due outbox jobs and delivers them to the funds, exactly once in effect.

Each delivery is one attempt: claim the job (a lease, ``outbox.Outbox.claim_due``), send it with
the claim's idempotency key and a timeout, then record the result in a transaction of its own:

- an answer (acknowledged or refused) is stored (``answers.Answers``) and the job is done;
- no answer, or a temporary one, reschedules the job: exponential backoff with jitter, by the
  policy of a ``tenacity.Retrying`` (its ``wait`` and ``stop``), kept in the database so that a
  restart, or another worker, carries on where this one stopped;
- an answer no retry can change, or the last attempt, parks the job as failed (an operator sees it
  in ``gateway claims list --failed``; the provider sees the Claim tagged ``failed``).

Exactly once: the idempotency key is the claim's id, stable across attempts, workers and restarts,
so a fund that committed and then lost the connection answers the retry with what it stored; and
every record is a compare-and-set on the lease, so one answer is stored whoever sends.

Jobs wait with their ``next_attempt_at`` in the database, not in a task: a fund that is down
holds no slot, and each fund has its own slots (``worker_concurrency``), so a slow fund never
starves the others.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
import tenacity
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.claims.answers import Answers, FundWork, answer_event
from gateway.claims.funds import Permanent, Transient, for_fund
from gateway.claims.model import CLAIM, FundEvent, JobKind, State
from gateway.claims.outbox import Job, Outbox
from gateway.claims.records import ClaimRecords
from gateway.errors import GatewayError
from gateway.settings import Settings
from gateway.storage.store import ResourceStore

log = structlog.get_logger("gateway.claims.forwarder")
_ORPHANS_PER_TICK = 50


def retry_policy(settings: Settings) -> tenacity.Retrying:
    """Backoff ``initial * 2^(n-1) + U(0, jitter)`` capped at the maximum; at most N attempts."""
    return tenacity.Retrying(
        wait=tenacity.wait_exponential_jitter(
            multiplier=settings.claim_backoff_initial_seconds,
            max=settings.claim_backoff_max_seconds,
            jitter=settings.claim_backoff_jitter_seconds,
        ),
        stop=tenacity.stop_after_attempt(settings.claim_max_attempts),
    )


@dataclass(frozen=True)
class Delivery:
    job: Job
    payload: dict[str, Any] | None  # the Claim as sent (submit) or cancelled; None: not stored
    attestation: str | None = None  # the number to cancel


class Forwarder(FundWork):
    def __post_init__(self) -> None:
        self.policy = retry_policy(self.settings)
        self.lease = timedelta(seconds=self.settings.claim_lease_seconds)
        self._inflight: dict[str, set[asyncio.Task[None]]] = {c: set() for c in self.funds.codes}
        self._wake = asyncio.Event()
        self._stopping = False

    # -- the loop --------------------------------------------------------------------------------

    def nudge(self) -> None:
        """Look for due jobs now (a claim was just queued, or a slot came free)."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Deliver until ``stop()``, then let the sends in flight finish (their leases cover them)."""
        try:
            while not self._stopping:
                try:
                    await self.tick()
                except Exception:  # a database hiccup must not end the worker
                    log.exception("forwarder_tick_failed")
                await self._idle()
        finally:
            await self.drain()

    async def _idle(self) -> None:
        if self._stopping:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=self.settings.worker_poll_seconds)
        self._wake.clear()

    async def drain(self, grace: float | None = None) -> None:
        tasks = [task for tasks in self._inflight.values() for task in tasks]
        if tasks:
            limit = self.settings.claim_send_timeout_seconds + 5 if grace is None else grace
            await asyncio.wait(tasks, timeout=limit)

    @property
    def busy(self) -> int:
        return sum(len(tasks) for tasks in self._inflight.values())

    async def tick(self) -> int:
        """Claim what is due for every fund with free slots and start sending it."""
        now = self.clock()
        deliveries: list[Delivery] = []
        orphans: list[Job] = []
        async with self.sessions() as session, session.begin():
            outbox = Outbox(session)
            for code, running in self._inflight.items():
                free = self.settings.worker_concurrency - len(running)
                if free > 0:
                    jobs = await outbox.claim_due(now, self.lease, limit=free, fund_code=code)
                    deliveries.extend([await self._prepare(session, job) for job in jobs])
            # Jobs routed to a fund no longer configured would wait forever: park them instead.
            orphans = await outbox.claim_due(
                now, self.lease, limit=_ORPHANS_PER_TICK, exclude_funds=self.funds.codes
            )
        for delivery in deliveries:
            task = asyncio.create_task(self._deliver(delivery))
            running = self._inflight[delivery.job.fund_code]
            running.add(task)
            task.add_done_callback(self._done(running))
        for job in orphans:
            await self._park(job, f"NO_ROUTE: no URL configured for fund {job.fund_code}")
        return len(deliveries) + len(orphans)

    def _done(self, running: set[asyncio.Task[None]]) -> Callable[[asyncio.Task[None]], None]:
        def forget(task: asyncio.Task[None]) -> None:
            running.discard(task)
            self.nudge()  # a slot came free

        return forget

    async def _prepare(self, session: AsyncSession, job: Job) -> Delivery:
        attestation = None
        if job.kind is JobKind.CANCEL:
            row = await ClaimRecords(session).get(job.claim_id)
            attestation = row.attestation if row is not None else None
        try:
            stored = await ResourceStore(session, self.keyring).read(CLAIM, job.claim_id)
        except GatewayError:  # gone: nothing to send (parked by _send, never retried)
            return Delivery(job, None, attestation)
        return Delivery(job, for_fund(stored.json()), attestation)

    # -- one attempt -----------------------------------------------------------------------------

    async def _deliver(self, delivery: Delivery) -> None:
        job = delivery.job
        try:
            try:
                answer = await self._send(delivery)
            except Transient as exc:
                await self._transient(job, exc)
            except Permanent as exc:
                await self._park(job, exc.reason)
            else:
                await self._answered(job, answer)
        except Exception:
            # The lease runs out and another attempt (here or in another worker) takes the job.
            log.exception("claim_delivery_crashed", job_id=job.job_id, claim_id=job.claim_id)

    async def _send(self, delivery: Delivery) -> dict[str, Any]:
        job = delivery.job
        if delivery.payload is None:
            raise Permanent("NO_CLAIM: the claim to send is not stored")
        if job.kind is JobKind.SUBMIT:
            # The key is the claim's id: the same for every attempt, whoever sends it.
            return await self.funds.submit(job.fund_code, job.claim_id, delivery.payload)
        if delivery.attestation is None or job.cancel_reason is None:
            raise Permanent("NOT_ACKNOWLEDGED: no attestation number to cancel")
        return await self.funds.cancel(
            job.fund_code, job.claim_id, delivery.attestation, job.cancel_reason, delivery.payload
        )

    async def _answered(self, job: Job, answer: dict[str, Any]) -> None:
        now = self.clock()
        event = answer_event(answer)
        async with self.sessions() as session, session.begin():
            answers = Answers(session, self.keyring)
            await answers.records.get(job.claim_id, lock=True)  # lock order: the claim first
            if job.kind is JobKind.CANCEL and event is FundEvent.REJECTED:
                # AT-6: the fund refused the cancellation; the attestation stands.
                codes = ",".join(_error_codes(answer)) or "refused"
                await answers.outbox.finish(job, "refused", now, error=f"CANCEL_REFUSED: {codes}")
                log.info("claim_cancel_refused", claim_id=job.claim_id, errors=codes)
                return
            if not await answers.outbox.finish(job, event.value, now):
                # Another worker took over after our lease ran out, or the settlement feed
                # brought the answer first: theirs stands, ours is dropped.
                log.info("claim_answer_dropped_lease_lost", job_id=job.job_id)
                return
            await answers.apply(job.claim_id, answer, now)
        log.info(
            "claim_delivered",
            claim_id=job.claim_id,
            kind=job.kind.value,
            fund=job.fund_code,
            fund_event=event.value,
            attempts=job.attempts,
        )

    def delay(self, attempts: int, retry_after: float | None = None) -> float | None:
        """Seconds until the next attempt after ``attempts`` of them, or ``None`` to stop."""
        state = tenacity.RetryCallState(self.policy, None, (), {})
        state.attempt_number = attempts
        if self.policy.stop(state):
            return None
        assert self.policy.wait is not None
        wait = float(self.policy.wait(state))
        if retry_after is not None:  # the fund asked for a pause (503 Retry-After)
            wait = max(wait, min(retry_after, self.settings.claim_backoff_max_seconds))
        return wait

    async def _transient(self, job: Job, exc: Transient) -> None:
        wait = self.delay(job.attempts, exc.retry_after)
        if wait is None:
            await self._park(job, f"{exc.reason} (after {job.attempts} attempts)")
            return
        now = self.clock()
        async with self.sessions() as session, session.begin():
            await Outbox(session).reschedule(job, now + timedelta(seconds=wait), exc.reason, now)
        log.info(
            "claim_delivery_retry",
            claim_id=job.claim_id,
            fund=job.fund_code,
            attempts=job.attempts,
            reason=exc.reason,
            wait_seconds=round(wait, 3),
        )

    async def _park(self, job: Job, reason: str) -> None:
        now = self.clock()
        async with self.sessions() as session, session.begin():
            answers = Answers(session, self.keyring)
            row = await answers.records.get(job.claim_id, lock=True)
            if not await answers.outbox.park(job, reason, now):
                return
            if job.kind is JobKind.SUBMIT and row is not None and row.state is State.QUEUED:
                await answers.mark(job.claim_id, State.FAILED, now, reason.split(":", 1)[0])
        log.warning(
            "claim_delivery_failed",
            claim_id=job.claim_id,
            kind=job.kind.value,
            fund=job.fund_code,
            attempts=job.attempts,
            reason=reason,
        )


def _error_codes(answer: dict[str, Any]) -> list[str]:
    codes: list[str] = []
    for error in answer.get("error") or []:
        for coding in ((error or {}).get("code") or {}).get("coding") or []:
            code = (coding or {}).get("code")
            if isinstance(code, str):
                codes.append(code[:40])
    return sorted(set(codes))
