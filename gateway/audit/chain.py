"""Verifying the audit chain (docs/architecture.md 8): ``gateway audit verify``.

Walks ``audit_events`` in ``seq`` order, in batches (the log grows without bound, SEC-8 keeps it
for years), and checks each link: ``seq`` follows the previous one (a deleted row leaves a gap),
``prev_hash`` is the previous row's hash (a reordered or deleted row breaks it) and ``hash`` is the
hash of the row's own columns and encrypted body (an altered row breaks it). Finally the chain head
must name the last row (rows deleted at the end). The first broken link is named.

The hash needs no key: anyone holding a copy of the table can verify it. It proves the rows were not
changed *after* being written; an attacker who can rewrite the whole table and the head could
recompute the chain. Anchoring the head hash outside the database (printed by ``verify``, to be
kept by the operator) closes that gap [A].

Synchronous on purpose: it runs in the CLI (blocking work belongs in the CLI, not in a request).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from gateway.audit.writer import GENESIS, HEAD_ID, Link, link_hash
from gateway.storage.tables import audit_chain_head, audit_events

BATCH = 1000


@dataclass(frozen=True)
class Verdict:
    ok: bool
    events: int  # rows checked
    head_seq: int
    head_hash: str
    broken_seq: int | None = None  # the first broken link
    problem: str | None = None

    def describe(self) -> str:
        if self.ok:
            return (
                f"audit chain intact: {self.events} events, head seq {self.head_seq}, "
                f"hash {self.head_hash}"
            )
        return f"audit chain broken at seq {self.broken_seq}: {self.problem}"


def _link(row: object) -> Link:
    m = row._mapping  # type: ignore[attr-defined]
    return Link(
        seq=int(m["seq"]),
        event_id=m["event_id"],
        recorded_at=m["recorded_at"],
        action=m["action"],
        outcome=m["outcome"],
        reason=m["reason"],
        resource_type=m["resource_type"],
        resource_id=m["resource_id"],
        patient_hmac=m["patient_hmac"],
        client_id=m["client_id"],
        role=m["role"],
        actor_nihdi=m["actor_nihdi"],
        request_id=m["request_id"],
        key_id=m["key_id"],
        body=bytes(m["body"]),
        prev_hash=m["prev_hash"],
    )


def verify(connection: Connection, *, batch: int = BATCH) -> Verdict:
    """Check the whole chain; the verdict names the first broken link."""
    expected_seq, expected_prev, count = 1, GENESIS, 0
    after = 0
    while True:
        rows = connection.execute(
            select(audit_events)
            .where(audit_events.c.seq > after)
            .order_by(audit_events.c.seq)
            .limit(batch)
        ).all()
        if not rows:
            break
        for row in rows:
            link = _link(row)
            stored_hash = row._mapping["hash"]
            if link.seq != expected_seq:
                return _broken(
                    count, expected_seq, f"row {expected_seq} is missing (next is {link.seq})"
                )
            if link.prev_hash != expected_prev:
                return _broken(
                    count,
                    link.seq,
                    "prev_hash does not name the previous row (deleted or reordered)",
                )
            if link_hash(link) != stored_hash:
                return _broken(count, link.seq, "row content does not match its hash (altered)")
            expected_seq, expected_prev = link.seq + 1, stored_hash
            count += 1
        after = expected_seq - 1
    head = connection.execute(
        select(audit_chain_head.c.seq, audit_chain_head.c.hash).where(
            audit_chain_head.c.id == HEAD_ID
        )
    ).first()
    head_seq, head_hash = (0, GENESIS) if head is None else (int(head.seq), str(head.hash))
    last_seq = expected_seq - 1
    if (head_seq, head_hash) != (last_seq, expected_prev):
        if head_seq > last_seq:
            return _broken(
                count,
                last_seq + 1,
                f"rows {last_seq + 1}..{head_seq} are missing (the head names {head_seq})",
            )
        return _broken(count, head_seq, "the chain head does not match the last row")
    return Verdict(True, count, head_seq, head_hash)


def _broken(count: int, seq: int, problem: str) -> Verdict:
    return Verdict(False, count, -1, "", broken_seq=seq, problem=problem)
