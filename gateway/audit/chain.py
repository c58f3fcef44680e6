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
import multiprocessing
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, func, select

from gateway.audit.writer import GENESIS, HEAD_ID, columns_hash
from gateway.storage.tables import audit_chain_head, audit_events, audit_pending

BATCH = 10_000
PARALLEL_FROM: Final = 100_000  # events; fewer are walked in one process
_SEQ: Final = itemgetter(0)
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


@dataclass(frozen=True)
class _Segment:
    """What one walker found in a range of ``seq``: its ends, to be stitched to its neighbours'."""

    first_seq: int | None = None  # None: no row in the range
    first_prev: str = ""
    last_seq: int = 0
    last_hash: str = ""
    count: int = 0
    broken_seq: int | None = None
    problem: str | None = None


def _rows(connection: Connection, low: int, high: int, batch: int) -> Iterator[tuple[Any, ...]]:
    """The rows with ``low <= seq <= high`` in ``seq`` order, as the driver's plain tuples, read
    by ``seq`` ranges of ``batch`` (no ORM objects, no per-value type processing).

    A range, not ``ORDER BY seq LIMIT``: without table statistics (a restored or freshly loaded
    database) PostgreSQL plans that as a bitmap scan and an on-disk sort of every batch, which
    made verifying a million events 2.5 times slower; a range needs no server sort whatever the
    plan, and its rows are put in order here (they mostly arrive in order: a linear sort)."""
    mark = "?" if connection.dialect.name == "sqlite" else "%s"
    sql = (
        f"SELECT {', '.join(_COLUMNS)} FROM audit_events "  # noqa: S608 (fixed column names)
        f"WHERE seq > {mark} AND seq <= {mark}"
    )
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        for after in range(low - 1, high, batch):
            cursor.execute(sql, (after, min(after + batch, high)))
            rows = cursor.fetchall()
            rows.sort(key=_SEQ)
            yield from rows
    finally:
        cursor.close()


def _walk(rows: Iterator[tuple[Any, ...]], anchors: Mapping[int, str]) -> _Segment:
    """Check each link after a range's first row; that one is checked against the row before
    it when the segments are stitched (``_stitch``)."""
    first_seq: int | None = None
    first_prev, expected_seq, expected_prev, count = "", 0, "", 0
    for row in rows:
        seq, prev_hash, stored = row[0], row[15], row[16]
        if first_seq is None:
            first_seq, first_prev = seq, prev_hash
        elif seq != expected_seq:
            problem = f"row {expected_seq} is missing (next is {seq})"
            return _Segment(
                first_seq, first_prev, count=count, broken_seq=expected_seq, problem=problem
            )
        elif prev_hash != expected_prev:
            problem = "prev_hash does not name the previous row (deleted or reordered)"
            return _Segment(first_seq, first_prev, count=count, broken_seq=seq, problem=problem)
        if isinstance(row[2], str):  # SQLite: the UTC wall time as text (UtcDateTime)
            row = (*row[:2], datetime.fromisoformat(row[2]), *row[3:])
        if columns_hash(*row[:16]) != stored:
            problem = "row content does not match its hash (altered)"
            return _Segment(first_seq, first_prev, count=count, broken_seq=seq, problem=problem)
        if anchors.get(seq, stored) != stored:
            problem = f"row {seq} does not match the anchor taken at it (rewritten)"
            return _Segment(first_seq, first_prev, count=count, broken_seq=seq, problem=problem)
        expected_seq, expected_prev = seq + 1, stored
        count += 1
    return _Segment(first_seq, first_prev, expected_seq - 1, expected_prev, count)


def _segment(url: str, low: int, high: int, batch: int, anchors: Mapping[int, str]) -> _Segment:
    """One range, walked in a process of its own (``verify_database``; ``url`` the driver URL)."""
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return _walk(_rows(connection, low, high, batch), anchors)
    finally:
        engine.dispose()


def verify(
    connection: Connection,
    *,
    batch: int = BATCH,
    anchors: Sequence[Anchor] = (),
    now: datetime | None = None,
    segments: Callable[[int, int], list[_Segment]] | None = None,
) -> Verdict:
    """Check the whole chain, and that each of ``anchors`` is still in it; the verdict names the
    first broken link. ``segments(low, high)`` walks the table's ``seq`` range in parts
    elsewhere (``verify_database``); by default it is walked here, in one part."""
    wanted = {a.seq: a.hash for a in anchors if a.seq > 0}
    low, high = connection.execute(
        select(func.min(audit_events.c.seq), func.max(audit_events.c.seq))
    ).one()
    if low is None:
        parts: list[_Segment] = []
    elif segments is None:
        parts = [_walk(_rows(connection, int(low), int(high), batch), wanted)]
    else:
        parts = segments(int(low), int(high))
    stitched = _stitch(parts)
    if stitched.broken_seq is not None:
        return _broken(stitched.count, stitched.broken_seq, stitched.problem or "")
    count, last_seq, last_hash = stitched.count, stitched.last_seq, stitched.last_hash
    missing = [seq for seq in wanted if seq > last_seq]
    if missing:
        return _broken(count, min(missing), f"the chain ends at seq {last_seq}, before this anchor")
    head_seq, head_hash = head(connection)
    if (head_seq, head_hash) != (last_seq, last_hash):
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


def _stitch(parts: Sequence[_Segment]) -> _Segment:
    """The walk of the whole table from its parts in ``seq`` order: each part's first row must
    follow the previous part's last (from GENESIS), then the part's own first break counts."""
    expected_seq, expected_prev, count = 1, GENESIS, 0
    for part in parts:
        if part.first_seq is None:
            continue  # no row in that range: the next part's first row shows the gap
        if part.first_seq != expected_seq:
            problem = f"row {expected_seq} is missing (next is {part.first_seq})"
            return _Segment(count=count, broken_seq=expected_seq, problem=problem)
        if part.first_prev != expected_prev:
            problem = "prev_hash does not name the previous row (deleted or reordered)"
            return _Segment(count=count, broken_seq=part.first_seq, problem=problem)
        count += part.count
        if part.broken_seq is not None:
            return _Segment(count=count, broken_seq=part.broken_seq, problem=part.problem)
        expected_seq, expected_prev = part.last_seq + 1, part.last_hash
    return _Segment(1, GENESIS, expected_seq - 1, expected_prev, count)


def verify_database(
    url: str,
    *,
    anchors: Sequence[Anchor] = (),
    workers: int = 1,
    batch: int = BATCH,
    parallel_from: int = PARALLEL_FROM,
) -> Verdict:
    """``verify`` of the database at ``url``, its ``seq`` range cut in ``workers`` parts walked
    by as many processes (hashing is CPU-bound: a million events are a few seconds per core)."""
    from sqlalchemy import create_engine

    from gateway.db import sync_url

    wanted = {a.seq: a.hash for a in anchors if a.seq > 0}
    driver_url = sync_url(url).render_as_string(hide_password=False)

    def in_processes(low: int, high: int) -> list[_Segment]:
        if high - low < parallel_from:  # starting processes would cost more than it saves
            return [_segment(driver_url, low, high, batch, wanted)]
        size = -(-(high - low + 1) // workers)
        bounds = [(start, min(start + size - 1, high)) for start in range(low, high + 1, size)]
        context = multiprocessing.get_context("spawn")  # no database handle crosses a fork
        with ProcessPoolExecutor(len(bounds), mp_context=context) as pool:
            walks = [pool.submit(_segment, driver_url, lo, hi, batch, wanted) for lo, hi in bounds]
            return [walk.result() for walk in walks]

    engine = create_engine(driver_url)
    try:
        with engine.connect() as connection:
            return verify(
                connection,
                batch=batch,
                anchors=anchors,
                segments=in_processes if workers > 1 else None,
            )
    finally:
        engine.dispose()


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
