"""Anchoring the audit chain (issue 19, item 7; SEC-9): ``gateway audit anchor`` takes the head to keep
outside the database, ``gateway audit verify --anchor FILE`` proves nothing up to it was rewritten,
even by a database owner who rewrites the whole table and its head so that the chain verifies."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.audit import writer
from gateway.audit.chain import Anchor
from gateway.auth.identity import Principal
from gateway.cli import main, new_encryption_key
from gateway.db import create_engine as create_async_engine
from gateway.db import session_factory
from gateway.settings import decode_key
from gateway.storage.crypto import Keyring
from tests.audit.tampering import rewrite_chain, tampering

ACTOR = Principal(client_id="test-pharmacy-1", role="pharmacist", nihdi="06012345")


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_async_engine(database_url)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def append(sessions: async_sessionmaker[AsyncSession], gateway_env: None) -> Any:
    """``await append(n)``: n more events; ``gateway audit ...`` runs on the same database."""
    keyring = Keyring(decode_key(new_encryption_key()))
    written = 0

    async def more(n: int) -> None:
        nonlocal written
        for _ in range(n):
            written += 1
            record = writer.AuditRecord(
                action="search",
                outcome="permit",
                reason="permit-rid",
                resource_type="MedicationRequest",
                resource_id=None,
                patient_ssin=None,
                actor=ACTOR,
                request_id=f"req-{written}",
            )
            async with sessions() as session, session.begin():
                await writer.record(session, keyring, record)

    return more


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["audit", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_SEC_9_anchor_prints_and_writes_the_head(
    append: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    await append(3)
    out_file = tmp_path / "anchor.json"
    code, out, _ = run(capsys, "anchor", "--out", str(out_file))
    assert code == 0
    printed = json.loads(out)
    assert printed == json.loads(out_file.read_text())
    assert printed["seq"] == 3
    assert len(printed["hash"]) == 64
    assert printed["at"].endswith("Z")
    code, out, _ = run(capsys, "verify", "--json")
    assert json.loads(out)["head_hash"] == printed["hash"]


async def test_SEC_9_verify_with_anchors_taken_as_the_log_grows(
    append: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    await append(2)
    run(capsys, "anchor", "--out", str(tmp_path / "first.json"))
    await append(3)
    run(capsys, "anchor", "--out", str(tmp_path / "second.json"))
    await append(1)
    code, out, _ = run(
        capsys,
        "verify",
        "--anchor",
        str(tmp_path / "first.json"),
        "--anchor",
        str(tmp_path / "second.json"),
    )
    assert code == 0
    assert "intact: 6 events" in out
    assert "2 anchor(s) matched" in out


async def test_SEC_9_a_rewritten_whole_table_is_caught_by_the_anchor(
    append: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path, database_url: str
) -> None:
    """The owner changes event 2's reason and recomputes every link and the head: the chain alone
    verifies, the anchor taken at event 4 does not."""
    await append(4)
    anchor_file = tmp_path / "anchor.json"
    run(capsys, "anchor", "--out", str(anchor_file))
    await append(2)

    def forge(row: dict[str, Any]) -> dict[str, Any]:
        return {**row, "reason": "permit-emergency"} if row["seq"] == 2 else row

    with tampering(database_url) as conn:
        rewrite_chain(conn, forge)
    assert run(capsys, "verify")[0] == 0  # the gap the anchor closes
    code, _, err = run(capsys, "verify", "--anchor", str(anchor_file))
    assert code == 1
    assert "broken at seq 4: row 4 does not match the anchor taken at it (rewritten)" in err


async def test_SEC_9_a_table_rewritten_shorter_than_the_anchor_is_caught(
    append: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path, database_url: str
) -> None:
    """Events dropped and the chain rebuilt without them: it ends before the anchor."""
    await append(5)
    anchor_file = tmp_path / "anchor.json"
    run(capsys, "anchor", "--out", str(anchor_file))
    with tampering(database_url) as conn:
        rewrite_chain(conn, lambda row: None if row["seq"] in (2, 3) else row)
    assert run(capsys, "verify")[0] == 0
    code, _, err = run(capsys, "verify", "--anchor", str(anchor_file))
    assert code == 1
    assert "broken at seq 5: the chain ends at seq 3, before this anchor" in err


async def test_SEC_9_events_after_the_last_anchor_rest_on_the_chain_alone(
    append: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path, database_url: str
) -> None:
    """What an anchor does not prove: a rewrite of only the events after it (the next anchor
    does); an edit that does not recompute the links is still named by the chain."""
    await append(2)
    anchor_file = tmp_path / "anchor.json"
    run(capsys, "anchor", "--out", str(anchor_file))
    await append(2)
    with tampering(database_url) as conn:
        rewrite_chain(conn, lambda row: {**row, "outcome": "error"} if row["seq"] == 4 else row)
    assert run(capsys, "verify", "--anchor", str(anchor_file))[0] == 0


async def test_SEC_9_an_unreadable_anchor_is_an_error_not_a_verdict(
    append: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    await append(1)
    bad = tmp_path / "bad.json"
    bad.write_text('{"seq": "one", "hash": "x"}')
    code, _, err = run(capsys, "verify", "--anchor", str(bad))
    assert code == 2
    assert "not an audit anchor" in err
    code, _, err = run(capsys, "verify", "--anchor", str(tmp_path / "absent.json"))
    assert code == 2


def test_SEC_9_anchor_round_trips() -> None:
    anchor = Anchor(12, "ab" * 32, "2026-12-07T03:00:00Z")
    assert Anchor.loads(anchor.dumps()) == anchor
    with pytest.raises(ValueError, match="64 hexadecimal"):
        Anchor.loads('{"seq": 1, "hash": "abc", "at": "2026-12-07T03:00:00Z"}')
