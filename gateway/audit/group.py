"""Group commit of the audit chain (issue 18): one writer per process chains many requests' events
in one transaction, every few milliseconds, and each request is answered once its batch committed.

Why: appending to the chain locks its head (``writer.chain``). Done in every request's own
transaction, that lock is held from the audit insert to the commit, so audited requests of all
instances commit one after the other. Here a request only inserts its events into
``audit_pending``, in its own transaction (a change and the events that record it still commit
together or not at all), and takes no chain lock. ``GroupCommitMiddleware`` then holds the answer
back: once the request's transaction has committed (``gateway.db``: before the response starts),
it hands the events' ids to the process's ``GroupWriter`` and waits. The writer gathers what
arrives within ``wait`` seconds (and whatever arrives while a batch commits), and in ONE
transaction locks the head once, appends the batch to the chain and deletes it from
``audit_pending``; then it wakes every waiting request of the batch.

One chain across processes: every writer (each gateway instance, each ``--workers`` process)
appends to the same chain under the same head lock, a batch at a time, so ``gateway audit verify``
checks exactly what it checked before, and ``seq`` still orders the whole log. Refusals
(``writer.record_denied``) are handed to the writer directly: nothing else is in their transaction.

A process that dies between a request's commit and its batch leaves the events in
``audit_pending``, committed: any writer chains pending events older than ``ORPHAN_AGE`` at its
next batch, at most every ``SWEEP_SECONDS``. ``gateway audit verify`` reports events left pending
longer than that (``chain.PENDING_GRACE``).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import structlog
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.audit.writer import GROUP_WRITERS, PENDING, Pending, chain
from gateway.storage.tables import audit_pending

log = structlog.get_logger("gateway.audit")

ORPHAN_AGE: Final = timedelta(seconds=10)  # a live request's events are chained in milliseconds
SWEEP_SECONDS: Final = 5.0
SWEEP_LIMIT: Final = 1000

_Waiter = tuple[tuple[str, ...], list[dict[str, Any]], "asyncio.Future[None]"]


class GroupWriter:
    """The process's audit writer for one database (one per ``async_sessionmaker``)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, wait: float) -> None:
        self.sessions = sessions
        self.wait = wait
        self.batches = 0  # committed batches, and the events they chained (metrics, tests)
        self.events = 0
        self._queue: list[_Waiter] = []
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_sweep = -math.inf

    async def commit(self, pending: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
        """Chain the committed pending events ``pending`` (their event ids) and the unchained
        ``rows`` (``writer.entries``) in the next batch; return once it has committed."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (tests): nothing of the old one survives
            self._loop, self._queue, self._task = loop, [], None
        done: asyncio.Future[None] = loop.create_future()
        self._queue.append((tuple(pending), list(rows), done))
        if self._task is None:
            self._task = loop.create_task(self._run())
        # A caller that goes away (a client disconnect) does not take its batch with it.
        await asyncio.shield(done)

    async def _run(self) -> None:
        try:
            if self.wait > 0:
                await asyncio.sleep(self.wait)
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    await self._write(batch)
                except Exception as error:
                    for _, _, done in batch:
                        if not done.done():
                            done.set_exception(error)
                else:
                    for _, _, done in batch:
                        if not done.done():
                            done.set_result(None)
        finally:
            self._task = None

    async def _write(self, batch: list[_Waiter]) -> None:
        ids = [event_id for pending, _, _ in batch for event_id in pending]
        direct = [row for _, rows, _ in batch for row in rows]
        sweep = time.monotonic() - self._last_sweep >= SWEEP_SECONDS
        async with self.sessions() as session, session.begin():
            postgres = session.bind is not None and session.bind.dialect.name == "postgresql"
            found: list[dict[str, Any]] = []
            if ids:
                mine = (
                    select(audit_pending)
                    .where(audit_pending.c.event_id.in_(ids))
                    .order_by(audit_pending.c.id)
                )
                # Waits for another writer sweeping one of them; an event it chained is gone.
                query = mine.with_for_update() if postgres else mine
                found = [dict(row) for row in (await session.execute(query)).mappings()]
            if sweep:  # the older first, in the order they were recorded
                found[:0] = await _orphans(session, postgres, {row["id"] for row in found})
            pending_ids = [row.pop("id") for row in found]
            await chain(session, found + direct)
            if pending_ids:
                await session.execute(
                    delete(audit_pending).where(audit_pending.c.id.in_(pending_ids))
                )
        if sweep:
            self._last_sweep = time.monotonic()
        self.batches += 1
        self.events += len(found) + len(direct)


async def _orphans(session: AsyncSession, postgres: bool, taken: set[int]) -> list[dict[str, Any]]:
    """Pending events left by a process that died before chaining them (module docstring)."""
    query = (
        select(audit_pending)
        .where(audit_pending.c.recorded_at < datetime.now(UTC) - ORPHAN_AGE)
        .order_by(audit_pending.c.id)
        .limit(SWEEP_LIMIT)
    )
    if postgres:
        query = query.with_for_update(skip_locked=True)  # another writer's are its own
    rows = [dict(row) for row in (await session.execute(query)).mappings()]
    if rows:
        log.warning("audit_orphans_chained", events=len(rows))
    return [row for row in rows if row["id"] not in taken]


class GroupCommitMiddleware:
    """Hold each answer until the events its request recorded are chained (module docstring).

    Plain ASGI, innermost: the request's transaction has committed when its response starts
    (``gateway.db.get_session``), and nothing is sent before the writer's batch has committed.
    """

    def __init__(self, app: ASGIApp, writer: GroupWriter) -> None:
        self.app = app
        self.writer = writer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        pending = Pending()

        async def send_when_chained(message: Message) -> None:
            if message["type"] == "http.response.start":
                pending.closed = True
            if pending and message["type"] == "http.response.start":
                ids = pending.copy()
                pending.clear()
                try:
                    await self.writer.commit(ids, ())
                except Exception as error:
                    # The events are committed in audit_pending: the next sweep chains them.
                    log.error(
                        "audit_chain_failed", events=len(ids), error_type=type(error).__name__
                    )
            await send(message)

        token = PENDING.set(pending)
        try:
            await self.app(scope, receive, send_when_chained)
        finally:
            pending.closed = True
            PENDING.reset(token)


def install(app: Any, sessions: async_sessionmaker[AsyncSession], *, wait: float) -> GroupWriter:
    """Start group commit for ``app``: call before any other middleware is added (innermost)."""
    writer = GroupWriter(sessions, wait=wait)
    GROUP_WRITERS[sessions] = writer.commit
    app.state.audit_writer = writer
    app.add_middleware(GroupCommitMiddleware, writer=writer)
    return writer
