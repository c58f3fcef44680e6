"""Fill a migrated gateway database with N chained audit events, fast (for ``bench.audit_verify``).

Run by path with the measured gateway first on ``PYTHONPATH`` (``python bench/audit_fill.py URL
N``), so the links are built and hashed by that gateway's own chain code (``Link``,
``link_hash``): ``gateway audit verify`` must find the chain intact. The bodies are AuditEvent-like
JSON encrypted with the gateway's keyring (a fresh key), about the size of a real event. Rows go
in with COPY on PostgreSQL (the head-advancing trigger off for the session, the head set once at
the end) and with batched executemany on SQLite. Prints a JSON line: events, seconds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

BATCH = 10_000


def _chain_code() -> tuple[Any, Any, str]:
    """``Link``, ``link_hash`` and the genesis hash, wherever this gateway keeps them."""
    for name in ("gateway.audit.writer", "gateway.audit.links", "gateway.audit.chain"):
        with_link = importlib.import_module(name)
        if hasattr(with_link, "Link") and hasattr(with_link, "link_hash"):
            break
    else:
        raise SystemExit("no Link/link_hash in this gateway's audit code")
    genesis = None
    for name in ("gateway.audit.writer", "gateway.storage.tables", "gateway.audit.chain"):
        genesis = getattr(importlib.import_module(name), "GENESIS", None)
        if genesis is not None:
            break
    if genesis is None:
        genesis = "0" * 64
    return with_link.Link, with_link.link_hash, str(genesis)


def links(count: int, keyring: Any) -> Iterator[dict[str, Any]]:
    from gateway.storage.crypto import associated_data

    link_type, link_hash, prev = _chain_code()
    names = {f.name for f in dataclasses.fields(link_type)}
    start = datetime.now(UTC) - timedelta(days=30)
    patients = [keyring.search_hash("ssin", f"{85073100000 + n:011d}") for n in range(1000)]
    for seq in range(1, count + 1):
        event_id = uuid.uuid4().hex
        recorded_at = start + timedelta(microseconds=seq * 2000)
        event = {
            "resourceType": "AuditEvent",
            "id": event_id,
            "type": {"code": "rest"},
            "subtype": [{"code": "read"}],
            "action": "R",
            "recorded": recorded_at.isoformat(),
            "outcome": "0",
            "agent": [{"who": {"identifier": {"value": "06012345"}}, "requestor": True}],
            "source": {"observer": {"display": "bench"}},
            "entity": [{"what": {"reference": f"MedicationRequest/{event_id}"}}],
        }
        values = {
            "seq": seq,
            "event_id": event_id,
            "recorded_at": recorded_at,
            "action": "read",
            "outcome": "permit",
            "reason": "permit-rid",
            "resource_type": "MedicationRequest",
            "resource_id": event_id,
            "patient_hmac": patients[seq % len(patients)],
            "client_id": "bench-pharmacist",
            "role": "pharmacist",
            "actor_nihdi": "06012345",
            "request_id": event_id,
            "key_id": keyring.key_id,
            "body": keyring.encrypt(
                orjson.dumps(event), associated_data("AuditEvent", event_id, 1)
            ),
            "prev_hash": prev,
        }
        unknown = names - values.keys()
        if unknown:
            raise SystemExit(f"this gateway's Link has fields the filler does not know: {unknown}")
        prev = link_hash(link_type(**{name: values[name] for name in names}))
        yield {**values, "hash": prev}


def fill(url: str, count: int) -> float:
    import base64

    from sqlalchemy import create_engine, text

    from gateway.db import sync_url
    from gateway.storage.crypto import Keyring, new_encryption_key
    from gateway.storage.tables import audit_events

    keyring = Keyring(base64.urlsafe_b64decode(new_encryption_key()))
    engine = create_engine(sync_url(url))
    began = time.perf_counter()
    rows = links(count, keyring)
    last: dict[str, Any] | None = None
    if engine.dialect.name == "postgresql":
        columns = [c.name for c in audit_events.columns]
        raw = engine.raw_connection()
        try:
            conn: Any = raw.driver_connection
            cursor = conn.cursor()
            cursor.execute("SET session_replication_role = replica")  # no per-row head trigger
            with cursor.copy(f"COPY audit_events ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([row.get(c) for c in columns])
                    last = row
            if last is not None:
                cursor.execute(
                    "INSERT INTO audit_chain_head (id, seq, hash) VALUES (1, %s, %s) "
                    "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                    (last["seq"], last["hash"]),
                )
            conn.commit()
        finally:
            raw.close()
    else:
        with engine.begin() as conn:
            # The insert trigger moves this row along the chain (migration 0003).
            conn.execute(
                text("INSERT OR IGNORE INTO audit_chain_head (id, seq, hash) VALUES (1, 0, :g)"),
                {"g": _chain_code()[2]},
            )
            batch: list[dict[str, Any]] = []
            for row in rows:
                batch.append(row)
                if len(batch) == BATCH:
                    conn.execute(audit_events.insert(), batch)
                    batch = []
            if batch:
                conn.execute(audit_events.insert(), batch)
    engine.dispose()
    return time.perf_counter() - began


def main() -> None:
    url, count = sys.argv[1], int(sys.argv[2])
    seconds = fill(url, count)
    digest = hashlib.sha256(url.encode()).hexdigest()[:8]
    print(json.dumps({"events": count, "seconds": round(seconds, 1), "database": digest}))


if __name__ == "__main__":
    main()
