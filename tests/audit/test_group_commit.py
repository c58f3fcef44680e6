"""Group commit of the audit chain (issue 18; SEC-5, SEC-9): requests' events are chained in batches
by one writer per process, and nothing is answered before its event is chained.

Over the HTTP API: a create's event is committed with the prescription (pending) and chained
before the 201; concurrent requests share batches; refusals go through the writer too. Below the
API: two writers (two gateway processes) append to the one chain, and each kind of tampering with
either writer's rows is named by ``gateway audit verify``, as with a single writer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import create_engine, func, select, text

from gateway.audit import writer
from gateway.audit.chain import verify, verify_database
from gateway.audit.group import ORPHAN_AGE, GroupWriter
from gateway.audit.writer import GENESIS, Link, link_hash
from gateway.auth.identity import Principal
from gateway.cli import new_encryption_key
from gateway.db import create_engine as create_async_engine
from gateway.db import session_factory, sync_url
from gateway.settings import Settings, decode_key
from gateway.storage.crypto import Keyring
from gateway.storage.tables import audit_events, audit_pending, resource_versions
from tests.audit.tampering import tampering, verdict
from tests.consents.factories import RX_URL, SSIN, audit_rows, prescription, reason_of
from tests.fhir_profiles.factories import medication_request
from tests.fixtures.fhir import FHIR_JSON


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Group commit on SQLite too (its default there is off)."""
    return settings.model_copy(update={"audit_group_commit": True})


async def count(app: FastAPI, table: Any) -> int:
    async with app.state.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(table))).scalar_one())


def intact(database_url: str) -> bool:
    return verdict(database_url)[0]


async def test_SEC_5_a_create_is_answered_once_its_event_is_chained(
    app: FastAPI, author: httpx.AsyncClient, database_url: str
) -> None:
    app.state.audit_writer.wait = 0.5  # a slow batch, to look at the state before the answer
    answer = asyncio.create_task(author.post(RX_URL, json=medication_request(), headers=FHIR_JSON))
    for _ in range(40):
        await asyncio.sleep(0.025)
        if await count(app, audit_pending):
            break
    # The prescription and its event committed together, the event not yet in the chain, and the
    # client not answered.
    assert not answer.done()
    assert await count(app, audit_pending) == 1
    assert await count(app, resource_versions) == 1
    assert await count(app, audit_events) == 0
    response = await answer
    assert response.status_code == 201, response.text
    assert await count(app, audit_pending) == 0
    rows = await audit_rows(app)
    assert [(r.action, r.resource_id) for r in rows] == [("create", response.json()["id"])]
    assert intact(database_url)


async def test_SEC_9_concurrent_requests_share_batches_of_one_chain(
    app: FastAPI, author: httpx.AsyncClient, database_url: str
) -> None:
    created = await asyncio.gather(*(prescription(author) for _ in range(16)))
    reads = await asyncio.gather(*(author.get(f"{RX_URL}/{rx['id']}") for rx in created))
    assert {r.status_code for r in reads} == {200}
    group: GroupWriter = app.state.audit_writer
    assert group.events == 32
    assert group.batches < 32  # several requests' events committed in one transaction
    rows = await audit_rows(app)
    assert sorted(r.action for r in rows) == ["create"] * 16 + ["read"] * 16
    assert await count(app, audit_pending) == 0
    assert intact(database_url)


async def test_SEC_5_a_refusal_is_chained_by_the_writer_before_the_403(
    app: FastAPI, author: httpx.AsyncClient, colleague: httpx.AsyncClient, database_url: str
) -> None:
    written = await prescription(author)
    before = app.state.audit_writer.events
    assert reason_of(await colleague.get(f"{RX_URL}/{written['id']}")) == "no-consent"
    assert app.state.audit_writer.events == before + 1
    assert [(r.outcome, r.reason) for r in await audit_rows(app)][-1] == ("deny", "no-consent")
    assert intact(database_url)


async def test_SEC_9_events_left_pending_by_a_dead_process_are_reported_then_chained(
    app: FastAPI, author: httpx.AsyncClient, database_url: str, keyring: Keyring
) -> None:
    """A process killed between a request's commit and its batch: verify says so until a
    writer's sweep chains the events."""
    await prescription(author)
    orphans = writer.entries(keyring, event(1), event(2))
    for orphan in orphans:
        orphan["recorded_at"] = datetime.now(UTC) - ORPHAN_AGE - timedelta(seconds=1)
    async with app.state.sessions() as session, session.begin():
        await session.execute(audit_pending.insert(), orphans)
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            assert verify(conn).ok  # recent enough: a writer is about to chain them
            late = verify(conn, now=datetime.now(UTC) + timedelta(minutes=2))
    finally:
        engine.dispose()
    assert not late.ok
    assert "2 recorded events wait to be chained" in (late.problem or "")
    app.state.audit_writer._last_sweep = float("-inf")  # the next batch sweeps
    await prescription(author)
    assert await count(app, audit_pending) == 0
    assert [r.request_id for r in await audit_rows(app)][1:3] == ["req-1", "req-2"]  # oldest first
    assert intact(database_url)


# -- two writers, one chain ------------------------------------------------------------------------

WRITERS = ("writer-a", "writer-b")


def event(n: int, client_id: str = "writer-a") -> writer.AuditRecord:
    return writer.AuditRecord(
        action="read",
        outcome="permit",
        reason="permit-author",
        resource_type="MedicationRequest",
        resource_id=f"id{n}",
        patient_ssin=SSIN,
        actor=Principal(client_id=client_id, role="prescriber", nihdi="19234011004"),
        request_id=f"req-{n}",
    )


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(decode_key(new_encryption_key()))


@pytest.fixture
async def two_writers(
    database_url: str,
) -> AsyncIterator[tuple[GroupWriter, GroupWriter]]:
    """Two group writers on engines of their own, as two gateway processes have."""
    engines = [create_async_engine(database_url) for _ in WRITERS]
    for engine in engines:  # connect one after the other: SQLite's pragmas run once, unlocked
        async with engine.connect():
            pass
    yield (
        GroupWriter(session_factory(engines[0]), wait=0.002),
        GroupWriter(session_factory(engines[1]), wait=0.002),
    )
    for engine in engines:
        await engine.dispose()


async def interleaved(two: tuple[GroupWriter, GroupWriter], keyring: Keyring, n: int) -> None:
    """``n`` rounds in which both writers commit a batch at once: their rows alternate."""
    for i in range(n):
        await asyncio.gather(
            *(
                group.commit((), writer.entries(keyring, event(2 * i + k, WRITERS[k])))
                for k, group in enumerate(two)
            )
        )


def seqs_of(database_url: str, client_id: str) -> list[int]:
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    select(audit_events.c.seq)
                    .where(audit_events.c.client_id == client_id)
                    .order_by(audit_events.c.seq)
                ).scalars()
            )
    finally:
        engine.dispose()


async def test_SEC_9_two_writers_append_to_one_verifiable_chain(
    database_url: str, two_writers: tuple[GroupWriter, GroupWriter], keyring: Keyring
) -> None:
    await interleaved(two_writers, keyring, 4)
    a, b = (seqs_of(database_url, w) for w in WRITERS)
    assert sorted(a + b) == list(range(1, 9))
    assert len(a) == len(b) == 4  # each writer appended its own batches
    assert verdict(database_url) == (True, None, None)


def _shift(conn: Any, since: int, by: int) -> None:
    """Renumber rows from ``since`` on by ``by`` (through negatives: the key stays unique)."""
    conn.execute(text("UPDATE audit_events SET seq = -seq WHERE seq >= :s"), {"s": since})
    conn.execute(text("UPDATE audit_events SET seq = -seq + :by WHERE seq < 0"), {"by": by})


def _delete(conn: Any, seq: int) -> None:
    conn.execute(text("DELETE FROM audit_events WHERE seq = :s"), {"s": seq})


def _delete_and_renumber(conn: Any, seq: int) -> None:
    _delete(conn, seq)
    _shift(conn, seq + 1, -1)


def _alter(conn: Any, seq: int) -> None:
    conn.execute(
        text("UPDATE audit_events SET reason = 'permit-emergency' WHERE seq = :s"), {"s": seq}
    )


def _reorder(conn: Any, seq: int) -> None:
    conn.execute(text("UPDATE audit_events SET seq = -1 WHERE seq = :s"), {"s": seq})
    conn.execute(text("UPDATE audit_events SET seq = :s WHERE seq = :n"), {"s": seq, "n": seq + 1})
    conn.execute(text("UPDATE audit_events SET seq = :n WHERE seq = -1"), {"n": seq + 1})


def _insert(conn: Any, seq: int) -> None:
    """A forged event put in before ``seq``, linked to the row before it with a hash of its own:
    the attacker cannot also relink the rows after it without rewriting the rest (anchors)."""
    row = dict(conn.execute(select(audit_events).where(audit_events.c.seq == seq)).one()._mapping)
    before = conn.execute(
        select(audit_events.c.hash).where(audit_events.c.seq == seq - 1)
    ).scalar_one_or_none()
    _shift(conn, seq, 1)
    row.pop("hash")
    row.update(event_id="forged" + row["event_id"][6:], reason="permit-emergency")
    row["prev_hash"] = before or GENESIS
    conn.execute(audit_events.insert().values(**row, hash=link_hash(Link(**row))))


TAMPERING = {
    "deleted": (_delete, "missing"),
    "deleted and renumbered": (_delete_and_renumber, "previous row"),
    "altered": (_alter, "altered"),
    "reordered": (_reorder, "previous row"),
    "inserted": (_insert, "previous row"),
}


@pytest.mark.parametrize("who", WRITERS)
@pytest.mark.parametrize("kind", list(TAMPERING))
async def test_SEC_9_tampering_with_either_writers_rows_is_named(
    database_url: str,
    two_writers: tuple[GroupWriter, GroupWriter],
    keyring: Keyring,
    who: str,
    kind: str,
) -> None:
    await interleaved(two_writers, keyring, 3)
    target = seqs_of(database_url, who)[1]  # a row in the middle of the chain
    tamper, said = TAMPERING[kind]
    with tampering(database_url) as conn:
        tamper(conn, target)
    ok, seq, problem = verdict(database_url)
    # an inserted row is consistent itself: the row after it, which no longer follows, is named
    expected = target + 1 if kind == "inserted" else target
    assert (ok, seq) == (False, expected), problem
    assert said in (problem or "")


async def test_SEC_9_a_missing_chain_head_is_named(
    database_url: str, two_writers: tuple[GroupWriter, GroupWriter], keyring: Keyring
) -> None:
    await interleaved(two_writers, keyring, 2)
    with tampering(database_url) as conn:
        conn.execute(text("DELETE FROM audit_chain_head"))
    ok, seq, problem = verdict(database_url)
    assert (ok, seq) == (False, 0)
    assert "head" in (problem or "")


async def test_SEC_9_a_rolled_back_change_leaves_nothing_pending(
    database_url: str, two_writers: tuple[GroupWriter, GroupWriter], keyring: Keyring
) -> None:
    """The events of a change that rolls back go with it; its writer is not held up by them."""
    group = two_writers[0]
    pending = writer.Pending()
    token = writer.PENDING.set(pending)
    try:
        async with group.sessions() as session:
            await writer.record(session, keyring, event(1))
            await session.rollback()
    finally:
        writer.PENDING.reset(token)
    assert len(pending) == 1
    await group.commit(pending, ())
    async with group.sessions() as session:
        assert (
            await session.execute(select(func.count()).select_from(audit_pending))
        ).scalar() == 0
        assert (await session.execute(select(func.count()).select_from(audit_events))).scalar() == 0


@pytest.mark.parametrize("kind", ["deleted", "inserted"])
async def test_SEC_9_verify_in_parallel_parts_names_the_same_first_break(
    database_url: str, two_writers: tuple[GroupWriter, GroupWriter], keyring: Keyring, kind: str
) -> None:
    """``gateway audit verify --workers N`` cuts the log into ranges hashed by N processes: a
    break at a range's first row (where two parts are stitched) is named as a single walk would."""
    await interleaved(two_writers, keyring, 6)  # 12 events, in two parts of 6
    tamper, said = TAMPERING[kind]
    with tampering(database_url) as conn:
        tamper(conn, 7)  # the first row of the second part
    parallel = verify_database(database_url, workers=2, parallel_from=0, batch=2)
    assert (parallel.ok, parallel.broken_seq, parallel.problem) == verdict(database_url)
    assert said in (parallel.problem or "")


async def test_SEC_9_events_recorded_after_the_answer_started_are_chained_at_once(
    database_url: str, two_writers: tuple[GroupWriter, GroupWriter], keyring: Keyring
) -> None:
    """A task a request started inherits its context: once the answer is on its way nobody
    would hand its events to the writer, so it chains them in its own transaction."""
    pending = writer.Pending()
    pending.closed = True
    token = writer.PENDING.set(pending)
    try:
        async with two_writers[0].sessions() as session, session.begin():
            await writer.record(session, keyring, event(1))
    finally:
        writer.PENDING.reset(token)
    assert pending == []
    assert seqs_of(database_url, "writer-a") == [1]
    assert verdict(database_url) == (True, None, None)
