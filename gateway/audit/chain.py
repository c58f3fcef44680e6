"""Verifying and anchoring the audit chain (docs/architecture.md 8): ``gateway audit verify``,
``gateway audit anchor``.

Walks ``audit_events`` in ``seq`` order, streamed in batches (the log grows without bound, SEC-8
keeps it for years), and checks each link: ``seq`` follows the previous one (a deleted row leaves
a gap), ``prev_hash`` is the previous row's hash (a reordered or deleted row breaks it) and ``hash``
is the hash of the row's own columns and encrypted body (an altered row breaks it). Finally the
chain head must name the last row (rows deleted at the end), and no event may wait in
``audit_pending`` longer than ``PENDING_GRACE`` (group commit chains it in milliseconds,
``gateway.audit.group``). The first broken link is named.

The hash needs no key: anyone holding a copy of the table can verify it. It proves the rows were
not changed *after* being written; an attacker who can rewrite the whole table and the head could
recompute the chain. An anchor closes that gap: ``gateway audit anchor`` prints the head (``seq``,
``hash``, the time) for the operator to keep outside the database (a ticket, a signed mail, a
write-once store), and ``verify --anchor FILE`` requires the row at that ``seq`` to still have that
hash. Each hash covers the previous one, so no row at or before an anchor can be changed, removed
or inserted without changing the anchored hash (short of a SHA-256 collision).

Synchronous on purpose: it runs in the CLI (blocking work belongs in the CLI, not in a request).
Rows are read as plain tuples (no ORM objects) and hashed in one loop: about a million events in
a few seconds (docs/operations.md, "Audit").
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, func, select

from gateway.audit.writer import GENESIS, HEAD_ID, columns_hash
from gateway.storage.tables import audit_chain_head, audit_events, audit_pending

BATCH = 10_000
_HEX: Final = frozenset("0123456789abcdef")
PENDING_GRACE: Final = timedelta(seconds=60)  # group.ORPHAN_AGE plus a sweep, with room to spare

# Link's fields in order, then the stored hash: the arguments of ``columns_hash``.
_COLUMNS: Final = (
    "seq",
    "event_id",
    "recorded_at",
    "action",
    "outcome",
    "reason",
    "resource_type",
    "resource_id",
    "patient_hmac",
    "client_id",
    "role",
    "actor_nihdi",
    "request_id",
    "key_id",
    "body",
    "prev_hash",
    "hash",
)


@dataclass(frozen=True)
class Anchor:
    """The chain head at a moment, kept outside the database."""

    seq: int
    hash: str
    at: str  # when it was taken, ISO 8601 UTC

    def dumps(self) -> str:
        return json.dumps({"seq": self.seq, "hash": self.hash, "at": self.at})

    @classmethod
    def loads(cls, text: str) -> Anchor:
        """An anchor file's content; ValueError when it is not one."""
        try:
            data = json.loads(text)
            seq, digest, at = data["seq"], data["hash"], data["at"]
        except (ValueError, TypeError, KeyError) as error:
            raise ValueError("not an audit anchor (expected {seq, hash, at})") from error
        if not isinstance(seq, int) or seq < 0 or not isinstance(at, str):
            raise ValueError("not an audit anchor: seq must be a whole number, at a time")
        if not isinstance(digest, str) or len(digest) != 64 or not set(digest) <= _HEX:
            raise ValueError("not an audit anchor: hash must be 64 hexadecimal digits")
        return cls(seq, digest, at)

    @classmethod
    def read(cls, path: Path) -> Anchor:
        return cls.loads(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Verdict:
    ok: bool
    events: int  # rows checked
    head_seq: int
    head_hash: str
    broken_seq: int | None = None  # the first broken link
    problem: str | None = None
    anchors: int = 0  # anchors checked

    def describe(self) -> str:
        if self.ok:
            anchored = f", {self.anchors} anchor(s) matched" if self.anchors else ""
            return (
                f"audit chain intact: {self.events} events, head seq {self.head_seq}, "
                f"hash {self.head_hash}{anchored}"
            )
        if self.broken_seq is None:
            return f"audit chain not verified: {self.problem}"
        return f"audit chain broken at seq {self.broken_seq}: {self.problem}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def head(connection: Connection) -> tuple[int, str]:
    """The chain head as stored: (0, GENESIS) before the first event."""
    row = connection.execute(
        select(audit_chain_head.c.seq, audit_chain_head.c.hash).where(
            audit_chain_head.c.id == HEAD_ID
        )
    ).first()
    return (0, GENESIS) if row is None else (int(row.seq), str(row.hash))


def anchor(connection: Connection, *, now: datetime | None = None) -> Anchor:
    """The head to keep outside the database (``gateway audit anchor``)."""
    seq, digest = head(connection)
    at = (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
    return Anchor(seq, digest, at.replace("+00:00", "Z"))


def verify(
    connection: Connection,
    *,
    batch: int = BATCH,
    anchors: Sequence[Anchor] = (),
    now: datetime | None = None,
) -> Verdict:
    """Check the whole chain, and that each of ``anchors`` is still in it; the verdict names the
    first broken link."""
    expected_seq, expected_prev, count = 1, GENESIS, 0
    wanted = {a.seq: a for a in anchors if a.seq > 0}
    query = select(*(audit_events.c[name] for name in _COLUMNS)).order_by(audit_events.c.seq)
    rows = connection.execution_options(yield_per=batch).execute(query)
    for row in rows:
        seq, prev_hash, stored = row[0], row[15], row[16]
        if seq != expected_seq:
            return _broken(count, expected_seq, f"row {expected_seq} is missing (next is {seq})")
        if prev_hash != expected_prev:
            return _broken(
                count, seq, "prev_hash does not name the previous row (deleted or reordered)"
            )
        if columns_hash(*row[:16]) != stored:
            return _broken(count, seq, "row content does not match its hash (altered)")
        if seq in wanted and wanted.pop(seq).hash != stored:
            return _broken(
                count, seq, f"row {seq} does not match the anchor taken at it (rewritten)"
            )
        expected_seq, expected_prev = seq + 1, stored
        count += 1
    rows.close()
    last_seq = expected_seq - 1
    if wanted:
        return _broken(count, min(wanted), f"the chain ends at seq {last_seq}, before this anchor")
    head_seq, head_hash = head(connection)
    if (head_seq, head_hash) != (last_seq, expected_prev):
        if head_seq > last_seq:
            return _broken(
                count,
                last_seq + 1,
                f"rows {last_seq + 1}..{head_seq} are missing (the head names {head_seq})",
            )
        return _broken(count, head_seq, "the chain head does not match the last row")
    late = _late_pending(connection, now or datetime.now(UTC))
    if late:
        return Verdict(
            False,
            count,
            head_seq,
            head_hash,
            problem=f"{late} recorded events wait to be chained since over "
            f"{int(PENDING_GRACE.total_seconds())} s (audit_pending): is a gateway running?",
        )
    return Verdict(True, count, head_seq, head_hash, anchors=len(anchors))


def _late_pending(connection: Connection, now: datetime) -> int:
    """Events recorded but not chained for longer than group commit ever takes."""
    late = connection.execute(
        select(func.count())
        .select_from(audit_pending)
        .where(audit_pending.c.recorded_at < now - PENDING_GRACE)
    ).scalar_one()
    return int(late)


def _broken(count: int, seq: int, problem: str) -> Verdict:
    return Verdict(False, count, -1, "", broken_seq=seq, problem=problem)
