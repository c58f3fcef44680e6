"""``gateway backup`` and ``gateway restore``: the database, without its keys.

PostgreSQL is dumped with ``pg_dump --format=custom`` (one consistent snapshot, taken while the
API runs, restored with ``pg_restore``); SQLite with its online backup API (a consistent copy of
the file). Beside the dump a small manifest (``<dump>.manifest.json``) records what a restore
must check: the schema revision, the rows per table, the audit chain head, and the ids of the
encryption keys the rows are sealed under.

The dump holds no key: bodies are AES-GCM ciphertext and patient columns keyed hashes, so a dump
read on its own reveals no health data and no SSIN. The key material
(``GATEWAY_ENCRYPTION_KEY``/``_KEYS``, ``GATEWAY_SEARCH_KEY``) is backed up apart, in the secret
store it is deployed from; a dump is useless without it, and so is the key without the dump. A
restore refuses to start unless the configured keys open every key id the manifest names.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, func, inspect, select, text
from sqlalchemy.engine import URL, make_url

from gateway.db import ensure_sqlite_dir, is_sqlite, sync_url
from gateway.storage.tables import audit_chain_head, audit_events, metadata, resource_versions

FORMAT_PG = "pg_dump-custom"
FORMAT_SQLITE = "sqlite"
_KEYED = (resource_versions.name, "signing_keys", audit_events.name, "audit_pending")


class BackupError(Exception):
    """The backup or restore cannot go on; the message says why (no data in it)."""


@dataclass(frozen=True)
class Manifest:
    format: str
    created_at: str
    revision: str | None
    rows: dict[str, int]  # rows per table
    key_ids: dict[str, list[str]]  # per sealed table, the key ids its rows name
    audit_head: dict[str, Any]  # {"seq": ..., "hash": ...}

    def all_key_ids(self) -> set[str]:
        return {key_id for ids in self.key_ids.values() for key_id in ids}


def manifest_path(dump: Path) -> Path:
    return dump.with_name(dump.name + ".manifest.json")


def describe(connection: Connection, fmt: str) -> Manifest:
    """What the database holds now (taken beside the dump, and after a restore to compare)."""
    rows = {
        table.name: int(connection.scalar(select(func.count()).select_from(table)) or 0)
        for table in metadata.sorted_tables
    }
    key_ids = {
        name: sorted(
            str(k) for k in connection.scalars(select(metadata.tables[name].c.key_id).distinct())
        )
        for name in _KEYED
    }
    head = connection.execute(select(audit_chain_head.c.seq, audit_chain_head.c.hash)).first()
    revision = None
    if inspect(connection).has_table("alembic_version"):
        revision = connection.scalar(text("SELECT version_num FROM alembic_version"))
    return Manifest(
        format=fmt,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        revision=revision,
        rows=rows,
        key_ids=key_ids,
        audit_head={"seq": int(head.seq), "hash": str(head.hash)} if head else {},
    )


def backup(database_url: str, out: Path) -> Manifest:
    """Write the dump to ``out`` (a new file) and its manifest beside it."""
    if out.exists():
        raise BackupError(f"{out} exists: a backup never overwrites one")
    out.parent.mkdir(parents=True, exist_ok=True)
    if is_sqlite(database_url):
        source = sqlite3.connect(str(make_url(database_url).database))
        target = sqlite3.connect(str(out))
        try:
            source.backup(target)  # one consistent copy; writers may go on
        finally:
            target.close()
            source.close()
        manifest = _describe_url(f"sqlite:///{out}", FORMAT_SQLITE)  # the copy, not the live file
    else:
        engine = create_engine(sync_url(database_url), isolation_level="REPEATABLE READ")
        try:
            # The manifest and the dump read one snapshot: the transaction exports it and stays
            # open while pg_dump reads the same one.
            with engine.connect() as connection, connection.begin():
                snapshot = str(connection.scalar(text("SELECT pg_export_snapshot()")))
                manifest = describe(connection, FORMAT_PG)
                _run(
                    ["pg_dump", "-Fc", "--no-owner", f"--snapshot={snapshot}", "-f", str(out)],
                    database_url,
                )
        finally:
            engine.dispose()
    manifest_path(out).write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    return manifest


def _describe_url(database_url: str, fmt: str) -> Manifest:
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            return describe(connection, fmt)
    finally:
        engine.dispose()


def read_manifest(dump: Path) -> Manifest:
    path = manifest_path(dump)
    if not path.is_file():
        raise BackupError(f"no manifest beside the dump ({path.name})")
    return Manifest(**json.loads(path.read_text()))


def restore(database_url: str, dump: Path, key_ids: set[str]) -> Manifest:
    """Load ``dump`` into the empty database at ``database_url``; the manifest after it."""
    expected = read_manifest(dump)
    missing = expected.all_key_ids() - key_ids
    if missing:
        raise BackupError(
            "the configured encryption keys do not include key id(s) "
            f"{', '.join(sorted(missing))}: restore the key material first (docs/operations.md)"
        )
    sqlite = is_sqlite(database_url)
    if (expected.format == FORMAT_SQLITE) != sqlite:
        raise BackupError(f"a {expected.format} dump cannot be restored into this database")
    if sqlite:
        target = Path(str(make_url(database_url).database))
        if target.exists() and target.stat().st_size > 0:
            raise BackupError("the target database is not empty")
        ensure_sqlite_dir(database_url)
        shutil.copyfile(dump, target)
    else:
        engine = create_engine(sync_url(database_url))
        try:
            with engine.connect() as connection:
                if inspect(connection).get_table_names():
                    raise BackupError("the target database is not empty")
        finally:
            engine.dispose()
        _run(
            ["pg_restore", "--no-owner", "--exit-on-error", "--single-transaction", str(dump)],
            database_url,
            database_flag=True,
        )
    restored = _describe_url(database_url, expected.format)
    _compare(expected, restored)
    return restored


def _compare(expected: Manifest, restored: Manifest) -> None:
    if restored.revision != expected.revision:
        raise BackupError(f"restored revision {restored.revision}, expected {expected.revision}")
    short = [t for t, n in expected.rows.items() if restored.rows.get(t, 0) < n]
    if short:
        raise BackupError(f"fewer rows restored than backed up in: {', '.join(short)}")


def _run(command: list[str], database_url: str, *, database_flag: bool = False) -> None:
    """Run a PostgreSQL client tool against ``database_url`` (password through the environment,
    never on the command line)."""
    if shutil.which(command[0]) is None:
        raise BackupError(f"{command[0]} is not installed (Debian: postgresql-client)")
    url, env = _libpq(make_url(database_url))
    target = ["--dbname", url] if database_flag else [url]
    result = subprocess.run(  # noqa: S603 - fixed tool, arguments are not shell-parsed
        [*command, *target], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BackupError(f"{command[0]} failed: {result.stderr.strip()[-500:]}")


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env
