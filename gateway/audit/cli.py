"""``gateway audit verify``: prove the audit chain intact, or name its first broken link (docs/architecture.md 8).

Exit status 0 when intact, 1 when broken, 2 when the database cannot be read. Registered on the
main parser by ``gateway.cli.build_parser``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from gateway.auth.cli import data_dir_option, settings_for


def _verify(args: argparse.Namespace) -> int:
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from gateway.audit.chain import verify
    from gateway.db import sync_url

    settings = settings_for(args.data_dir)
    engine = create_engine(sync_url(settings.database_url))
    try:
        with engine.connect() as connection:
            verdict = verify(connection)
    except (OperationalError, ProgrammingError) as exc:
        print(
            f"error: database not ready ({type(exc).__name__}); run `gateway db upgrade`",
            file=sys.stderr,
        )
        return 2
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(verdict.__dict__))
    else:
        print(verdict.describe(), file=sys.stdout if verdict.ok else sys.stderr)
    return 0 if verdict.ok else 1


def register(commands: Any) -> None:
    """Add ``gateway audit ...`` to the main parser's subcommands."""
    audit = commands.add_parser("audit", help="the audit log (docs/architecture.md 8)")
    sub = audit.add_subparsers(dest="audit", required=True)
    verify = sub.add_parser("verify", help="walk the hash chain; name the first broken link")
    data_dir_option(verify)
    verify.add_argument("--json", action="store_true", help="print the verdict as JSON")
    verify.set_defaults(func=_verify)
