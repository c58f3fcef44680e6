"""``gateway audit verify|anchor``: prove the audit chain intact, or name its first broken link;
take an anchor of its head to keep outside the database (docs/architecture.md 8, docs/operations.md).

``verify`` exits 0 when intact (and every ``--anchor`` matches), 1 when broken, 2 when the database
cannot be read or an anchor file is unreadable. ``anchor`` prints the head as one JSON line
(``{"seq": ..., "hash": ..., "at": ...}``) and with ``--out FILE`` also writes it there. Registered on
the main parser by ``gateway.cli.build_parser``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.auth.cli import data_dir_option, settings_for

if TYPE_CHECKING:
    from sqlalchemy import Connection


class _NotReady(Exception):
    pass


@contextmanager
def _connection(args: argparse.Namespace) -> Iterator[Connection]:
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from gateway.db import sync_url

    engine = create_engine(sync_url(settings_for(args.data_dir).database_url))
    try:
        with engine.connect() as connection:
            yield connection
    except (OperationalError, ProgrammingError) as exc:
        raise _NotReady(type(exc).__name__) from exc
    finally:
        engine.dispose()


def _reading(work: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return work(args)
        except _NotReady as exc:
            print(f"error: database not ready ({exc}); run `gateway db upgrade`", file=sys.stderr)
            return 2

    return run


@_reading
def _verify(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from gateway.audit.chain import Anchor, verify_database

    try:
        anchors = [Anchor.read(Path(name)) for name in args.anchor or ()]
    except (OSError, ValueError) as exc:
        print(f"error: anchor: {exc}", file=sys.stderr)
        return 2
    try:
        verdict = verify_database(
            settings_for(args.data_dir).database_url, anchors=anchors, workers=max(1, args.workers)
        )
    except (OperationalError, ProgrammingError) as exc:
        raise _NotReady(type(exc).__name__) from exc
    if args.json:
        print(json.dumps(verdict.as_dict()))
    else:
        print(verdict.describe(), file=sys.stdout if verdict.ok else sys.stderr)
    return 0 if verdict.ok else 1


@_reading
def _anchor(args: argparse.Namespace) -> int:
    from gateway.audit.chain import anchor

    with _connection(args) as connection:
        taken = anchor(connection)
    line = taken.dumps()
    if args.out:
        Path(args.out).write_text(line + "\n", encoding="utf-8")
    print(line)
    return 0


def register(commands: Any) -> None:
    """Add ``gateway audit ...`` to the main parser's subcommands."""
    audit = commands.add_parser("audit", help="the audit log (docs/architecture.md 8)")
    sub = audit.add_subparsers(dest="audit", required=True)
    verify = sub.add_parser("verify", help="walk the hash chain; name the first broken link")
    data_dir_option(verify)
    verify.add_argument("--json", action="store_true", help="print the verdict as JSON")
    verify.add_argument(
        "--anchor",
        action="append",
        metavar="FILE",
        help="an anchor taken earlier (gateway audit anchor --out): the chain must still hold it; "
        "repeatable",
    )
    verify.add_argument(
        "--workers",
        type=int,
        default=min(os.cpu_count() or 1, 8),
        help="processes hashing parts of a large log at once (default: one per core, at most 8)",
    )
    verify.set_defaults(func=_verify)
    anchor = sub.add_parser(
        "anchor", help="print the chain head (seq, hash, time) to keep outside the database"
    )
    data_dir_option(anchor)
    anchor.add_argument("--out", metavar="FILE", help="also write the anchor to FILE")
    anchor.set_defaults(func=_anchor)
