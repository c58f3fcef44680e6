"""The ``gateway`` command: serve, demo, migrate, keys, certs, clients, token, audit, worker, claims,
patients, gmf, family. Operators' entry point (docs/architecture.md 1)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway.access.family_cli import register as register_family_commands
from gateway.access.gmf_cli import register as register_gmf_commands
from gateway.audit.cli import register as register_audit_commands
from gateway.auth.cli import register as register_auth_commands
from gateway.auth.patients_cli import register as register_patient_commands
from gateway.claims.cli import register as register_claims_commands
from gateway.data_cli import register as register_data_commands
from gateway.storage.crypto import new_encryption_key


def _serve(args: argparse.Namespace) -> int:
    from gateway.drain import serve
    from gateway.settings import Settings

    serve(
        "gateway.app:create_app",
        drain_seconds=Settings().drain_seconds,  # after SIGTERM (docs/operations.md)
        factory=True,
        host=args.host,
        port=args.port,
        workers=serve_workers(args.workers),
        access_log=False,  # the request-id middleware logs every request, without query strings
        log_level="warning",
        **server_limits(),
    )
    return 0


def serve_workers(requested: int | None) -> int:
    """uvicorn processes: one on SQLite (one writer at a time, and the embedded claim worker),
    else ``--workers`` or one per CPU (issue 18; docs/operations.md)."""
    from gateway.settings import Settings

    if Settings().database_url.startswith("sqlite"):
        if requested not in (None, 1):
            raise SystemExit("gateway serve: SQLite is served by one process (--workers 1)")
        return 1
    return requested or os.cpu_count() or 1


def server_limits() -> dict[str, Any]:
    """What uvicorn bounds for the gateway, from ``GATEWAY_*`` settings (docs/operations.md)."""
    from gateway.settings import Settings

    settings = Settings()
    return {
        # h11, not httptools: h11 enforces a configurable limit on the request line plus headers
        # (400 beyond it); httptools' limit is fixed in its parser and not configurable.
        "http": "h11",
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        # Connections and tasks per process; beyond it uvicorn answers 503 itself.
        "limit_concurrency": settings.max_connections,
        "timeout_keep_alive": settings.keep_alive_seconds,
        # The client address behind a trusted proxy (login throttling, docs/portal.md).
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
    }


def _demo(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    run_demo(host=args.host, port=args.port, data_dir=Path(args.data_dir))
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    from gateway.migrate import upgrade
    from gateway.settings import Settings

    upgrade(Settings().database_url, args.revision)
    print(f"database upgraded to {args.revision}")
    return 0


def _db_downgrade(args: argparse.Namespace) -> int:
    from gateway.migrate import downgrade
    from gateway.settings import Settings

    downgrade(Settings().database_url, args.revision)
    print(f"database downgraded to {args.revision}")
    return 0


def _keys_new_encryption_key(_args: argparse.Namespace) -> int:
    print(new_encryption_key())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve", help="run the API (configuration from GATEWAY_* variables)"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers", type=int, default=None, help="default: one per CPU; 1 on SQLite"
    )
    serve.set_defaults(func=_serve)

    demo = commands.add_parser(
        "demo", help="run the gateway with demo data on the embedded defaults"
    )
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--data-dir", default=os.environ.get("GATEWAY_DATA_DIR", "./var"))
    demo.set_defaults(func=_demo)

    db = commands.add_parser("db", help="database migrations").add_subparsers(
        dest="db", required=True
    )
    up = db.add_parser("upgrade", help="apply migrations (default: to the newest)")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=_db_upgrade)
    down = db.add_parser("downgrade", help="revert migrations to a revision")
    down.add_argument("revision")
    down.set_defaults(func=_db_downgrade)

    keys = commands.add_parser("keys", help="keys").add_subparsers(dest="keys", required=True)
    new_key = keys.add_parser("new-encryption-key", help="print a fresh GATEWAY_ENCRYPTION_KEY")
    new_key.set_defaults(func=_keys_new_encryption_key)
    register_auth_commands(commands, keys)
    register_data_commands(commands, keys)
    register_audit_commands(commands)
    register_claims_commands(commands)
    register_patient_commands(commands)
    register_gmf_commands(commands)
    register_family_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
