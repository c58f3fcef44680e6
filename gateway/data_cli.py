"""The operator's commands on the data at rest (docs/operations.md): ``gateway keys reencrypt``,
``gateway keys status``, ``gateway keys search-key``, ``gateway backup`` and ``gateway restore``.

Registered on the main parser by ``gateway.cli.build_parser``. Progress goes to stderr, results to
stdout; nothing printed names a patient or holds a body.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path
from typing import Any

from gateway.auth.cli import data_dir_option, fail, run_database, settings_for


def _keys_status(args: argparse.Namespace) -> int:
    from gateway.storage.keys import key_labels, keyring_from
    from gateway.storage.rekey import key_usage

    settings = settings_for(args.data_dir)

    async def usage(sessions: Any) -> dict[str, dict[str, int]]:
        async with sessions() as session:
            result: dict[str, dict[str, int]] = await key_usage(session)
            return result

    counts = run_database(usage, settings)
    report = key_report(counts, key_labels(settings), keyring_from(settings).key_id)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(describe_keys(report))
    return 1 if report["unknown"] else 0


def key_report(
    counts: dict[str, dict[str, int]], labels: dict[str, str], current: str
) -> dict[str, Any]:
    """Per configured key: rows per table, and whether it may be retired; unknown key ids."""
    keys = []
    for key_id, label in labels.items():
        rows = {table: by_key.get(key_id, 0) for table, by_key in counts.items()}
        keys.append(
            {
                "label": label,
                "key_id": key_id,
                "current": key_id == current,
                "rows": rows,
                "retirable": key_id != current and not any(rows.values()),
            }
        )
    unknown = sorted({k for by_key in counts.values() for k in by_key} - set(labels))
    return {"keys": keys, "unknown": unknown}


def describe_keys(report: dict[str, Any]) -> str:
    lines = []
    for key in report["keys"]:
        rows = ", ".join(f"{table} {n}" for table, n in key["rows"].items())
        if key["current"]:
            verdict = "current"
        elif key["retirable"]:
            verdict = "no row uses it: may be retired"
        else:
            verdict = "still needed"
        lines.append(f"{key['label']} (id {key['key_id']}): {rows} - {verdict}")
    for key_id in report["unknown"]:
        lines.append(f"id {key_id}: rows sealed under a key that is not configured (unreadable)")
    return "\n".join(lines)


def _keys_reencrypt(args: argparse.Namespace) -> int:
    from gateway.storage.keys import key_labels, keyring_from
    from gateway.storage.rekey import key_usage, reencrypt

    settings = settings_for(args.data_dir)
    keyring = keyring_from(settings)

    def progress(table: str, moved: int, total: int) -> None:
        print(f"{table}: {moved}/{total} resealed", file=sys.stderr, flush=True)

    async def run(sessions: Any) -> tuple[Any, dict[str, dict[str, int]]]:
        moved = await reencrypt(sessions, keyring, batch=args.batch, progress=progress)
        async with sessions() as session:
            return moved, await key_usage(session)

    moved, counts = run_database(run, settings)
    for table, result in moved.items():
        print(f"{table}: {result.moved} resealed, {result.remaining} still under another key")
    print(describe_keys(key_report(counts, key_labels(settings), keyring.key_id)))
    return 1 if any(result.remaining for result in moved.values()) else 0


def _keys_search_key(args: argparse.Namespace) -> int:
    from gateway.storage.crypto import search_key_of

    settings = settings_for(args.data_dir)
    configured = settings.search_key_bytes()
    keys, _ = settings.encryption_key_set()
    if configured is None and len(keys) != 1:
        return fail("several encryption keys and no GATEWAY_SEARCH_KEY")
    key = configured if configured is not None else search_key_of(next(iter(keys.values())))
    print(base64.urlsafe_b64encode(key).decode())
    return 0


def _backup(args: argparse.Namespace) -> int:
    from gateway.storage.backup import BackupError, backup

    settings = settings_for(args.data_dir)
    try:
        manifest = backup(settings.database_url, Path(args.out))
    except BackupError as exc:
        return fail(str(exc))
    print(
        f"backup {args.out} ({manifest.format}, revision {manifest.revision}): "
        f"{sum(manifest.rows.values())} rows, audit head seq {manifest.audit_head.get('seq', 0)}, "
        f"key ids {', '.join(sorted(manifest.all_key_ids())) or '-'}"
    )
    print("the dump holds no key: keep the encryption and search keys apart (docs/operations.md)")
    return 0


def _restore(args: argparse.Namespace) -> int:
    from sqlalchemy import create_engine

    from gateway.audit.chain import verify
    from gateway.db import sync_url
    from gateway.storage.backup import BackupError, restore
    from gateway.storage.keys import key_labels

    settings = settings_for(args.data_dir)
    try:
        manifest = restore(settings.database_url, Path(args.dump), set(key_labels(settings)))
    except BackupError as exc:
        return fail(str(exc))
    print(f"restored {sum(manifest.rows.values())} rows, revision {manifest.revision}")
    engine = create_engine(sync_url(settings.database_url))
    try:
        with engine.connect() as connection:
            verdict = verify(connection)
    finally:
        engine.dispose()
    print(verdict.describe(), file=sys.stdout if verdict.ok else sys.stderr)
    return 0 if verdict.ok else 1


def register(commands: Any, keys: Any) -> None:
    """Add the commands to ``gateway``'s parser (``keys`` is the existing ``keys`` group)."""
    status = keys.add_parser("status", help="rows per encryption key; which keys may be retired")
    data_dir_option(status)
    status.add_argument("--json", action="store_true", help="print the report as JSON")
    status.set_defaults(func=_keys_status)
    rekey = keys.add_parser(
        "reencrypt", help="reseal rows under older keys with the current one (online, batched)"
    )
    data_dir_option(rekey)
    rekey.add_argument("--batch", type=int, default=200, help="rows per transaction")
    rekey.set_defaults(func=_keys_reencrypt)
    search = keys.add_parser(
        "search-key", help="print GATEWAY_SEARCH_KEY (needed before a second encryption key)"
    )
    data_dir_option(search)
    search.set_defaults(func=_keys_search_key)

    dump = commands.add_parser("backup", help="dump the database and its manifest (no keys)")
    data_dir_option(dump)
    dump.add_argument("--out", required=True, help="the dump file to write (never overwritten)")
    dump.set_defaults(func=_backup)
    load = commands.add_parser("restore", help="load a dump into an empty database, then verify")
    data_dir_option(load)
    load.add_argument("dump", help="a file written by gateway backup")
    load.set_defaults(func=_restore)
