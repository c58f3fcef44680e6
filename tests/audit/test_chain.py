"""The audit chain (docs/architecture.md 8, domain SEC-5, SEC-9): append-only, hash-chained, verifiable.

``gateway audit verify`` must name the first broken link when a row is altered, deleted or
reordered, or rows are cut off the end. Tampering goes around the append-only triggers, as an
attacker with the database owner's rights would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.audit import writer
from gateway.auth.identity import Principal
from gateway.cli import main, new_encryption_key
from gateway.db import create_engine as create_async_engine
from gateway.db import session_factory, sync_url
from gateway.settings import decode_key
from gateway.storage.crypto import Keyring
from tests.audit.tampering import tampering, verdict

SSIN = "85073003328"
ACTOR = Principal(client_id="test-prescriber-1", role="prescriber", nihdi="19234011004")


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(decode_key(new_encryption_key()))


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_async_engine(database_url)
    yield session_factory(engine)
    await engine.dispose()


def event(n: int, outcome: str = "permit") -> writer.AuditRecord:
    return writer.AuditRecord(
        action="read",
        outcome=outcome,
        reason="permit-author" if outcome == "permit" else "no-consent",
        resource_type="MedicationRequest",
        resource_id=f"id{n}",
        patient_ssin=SSIN,
        actor=ACTOR,
        request_id=f"req-{n}",
    )


async def write(sessions: async_sessionmaker[AsyncSession], keyring: Keyring, n: int) -> None:
    for i in range(n):
        async with sessions() as session, session.begin():
            await writer.record(session, keyring, event(i))


async def test_SEC_9_intact_chain_verifies(database_url: str, sessions, keyring) -> None:
    await write(sessions, keyring, 5)
    assert verdict(database_url) == (True, None, None)


async def test_SEC_9_empty_log_verifies(database_url: str) -> None:
    assert verdict(database_url)[0]


async def test_SEC_9_denied_attempt_has_its_own_transaction(
    database_url, sessions, keyring
) -> None:
    await writer.record_denied(sessions, keyring, event(1, "deny"))
    async with sessions() as session:
        row = (
            await session.execute(text("SELECT outcome, reason, patient_hmac FROM audit_events"))
        ).one()
    assert row.outcome == "deny"
    assert row.reason == "no-consent"
    assert row.patient_hmac == keyring.search_hash("ssin", SSIN)  # never the SSIN in clear
    assert verdict(database_url)[0]


async def test_SEC_9_no_ssin_in_clear_at_rest(database_url, sessions, keyring) -> None:
    await write(sessions, keyring, 1)
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT * FROM audit_events")).one()
    finally:
        engine.dispose()
    for value in row:
        raw = value if isinstance(value, bytes) else str(value).encode()
        assert SSIN.encode() not in raw


async def test_SEC_9_rolled_back_change_leaves_no_event(database_url, sessions, keyring) -> None:
    async with sessions() as session:
        await writer.record(session, keyring, event(1))
        await session.rollback()
    await write(sessions, keyring, 1)
    assert verdict(database_url)[0]


async def test_SEC_9_append_only_refuses_update_and_delete(database_url, sessions, keyring) -> None:
    await write(sessions, keyring, 2)
    engine = create_engine(sync_url(database_url))
    try:
        for statement in (
            "UPDATE audit_events SET reason = 'permit-admin' WHERE seq = 1",
            "DELETE FROM audit_events WHERE seq = 2",
        ):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
                conn.execute(text(statement))
    finally:
        engine.dispose()
    assert verdict(database_url)[0]


async def test_SEC_9_verify_names_an_altered_row(database_url, sessions, keyring) -> None:
    await write(sessions, keyring, 5)
    with tampering(database_url) as conn:
        conn.execute(
            text(
                "UPDATE audit_events SET outcome = 'permit', reason = 'permit-relationship' WHERE seq = 3"
            )
        )
    ok, seq, problem = verdict(database_url)
    assert (ok, seq) == (False, 3)
    assert "altered" in (problem or "")


async def test_SEC_9_verify_names_an_altered_body(database_url, sessions, keyring) -> None:
    await write(sessions, keyring, 3)
    with tampering(database_url) as conn:
        body = conn.execute(text("SELECT body FROM audit_events WHERE seq = 3")).scalar_one()
        forged = bytes(body[:-1]) + bytes([body[-1] ^ 1])
        conn.execute(text("UPDATE audit_events SET body = :b WHERE seq = 3"), {"b": forged})
    assert verdict(database_url)[:2] == (False, 3)


@pytest.mark.parametrize(
    ("events", "first", "last"),
    [
        (5, 2, 2),
        # Rows 3 to 7: whole batches of the walk (2 rows each) come back empty, and the walk goes
        # on past them to name the first missing row.
        (9, 3, 7),
    ],
)
async def test_SEC_9_verify_names_a_deleted_row(
    database_url, sessions, keyring, events: int, first: int, last: int
) -> None:
    await write(sessions, keyring, events)
    with tampering(database_url) as conn:
        conn.execute(
            text("DELETE FROM audit_events WHERE seq BETWEEN :a AND :b"), {"a": first, "b": last}
        )
    ok, seq, problem = verdict(database_url)
    assert (ok, seq) == (False, first)
    assert f"row {first} is missing (next is {last + 1})" in (problem or "")


async def test_SEC_9_verify_names_a_deleted_and_renumbered_row(
    database_url, sessions, keyring
) -> None:
    await write(sessions, keyring, 4)
    with tampering(database_url) as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq = 2"))
        conn.execute(text("UPDATE audit_events SET seq = seq - 1 WHERE seq = 3"))
        conn.execute(text("UPDATE audit_events SET seq = seq - 1 WHERE seq = 4"))
    assert verdict(database_url)[:2] == (False, 2)


async def test_SEC_9_verify_names_reordered_rows(database_url, sessions, keyring) -> None:
    await write(sessions, keyring, 5)
    with tampering(database_url) as conn:
        conn.execute(text("UPDATE audit_events SET seq = -1 WHERE seq = 2"))
        conn.execute(text("UPDATE audit_events SET seq = 2 WHERE seq = 3"))
        conn.execute(text("UPDATE audit_events SET seq = 3 WHERE seq = -1"))
    ok, seq, problem = verdict(database_url)
    assert (ok, seq) == (False, 2)
    assert "previous row" in (problem or "")


async def test_SEC_9_verify_names_rows_cut_off_the_end(database_url, sessions, keyring) -> None:
    await write(sessions, keyring, 5)
    with tampering(database_url) as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq >= 4"))
    ok, seq, problem = verdict(database_url)
    assert (ok, seq) == (False, 4)
    assert "missing" in (problem or "")


async def test_SEC_9_concurrent_appends_keep_one_chain(database_url, sessions, keyring) -> None:
    """Several writers at once (as several gateway instances would): the chain stays one line."""

    async def one(i: int) -> None:
        async with sessions() as session, session.begin():
            await writer.record(session, keyring, event(i))

    await asyncio.gather(*(one(i) for i in range(12)))
    async with sessions() as session:
        count = (await session.execute(text("SELECT count(*) FROM audit_events"))).scalar_one()
    assert count == 12
    assert verdict(database_url)[0]


def test_SEC_9_cli_verify_exit_codes(database_url: str, monkeypatch, capsys, tmp_path) -> None:
    monkeypatch.setenv("GATEWAY_DATABASE_URL", database_url)
    monkeypatch.setenv("GATEWAY_ENCRYPTION_KEY", new_encryption_key())
    keyring = Keyring(decode_key(new_encryption_key()))

    async def fill() -> None:
        engine = create_async_engine(database_url)
        await write(session_factory(engine), keyring, 3)
        await engine.dispose()

    asyncio.run(fill())
    assert main(["audit", "verify"]) == 0
    assert "intact: 3 events" in capsys.readouterr().out
    with tampering(database_url) as conn:
        conn.execute(text("UPDATE audit_events SET client_id = 'someone-else' WHERE seq = 2"))
    assert main(["audit", "verify"]) == 1
    assert "broken at seq 2" in capsys.readouterr().err
