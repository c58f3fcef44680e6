"""``python -m mutualities --code 100 --port 9100 [--code 300 ...]``: run mock sickness funds.

Every option is described by ``--help`` and in ``mutualities/README.md``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
import uvicorn

from mutualities.app import create_app
from mutualities.config import FundsConfig
from mutualities.faults import FaultSettings


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mutualities", description="Mock Belgian sickness funds"
    )
    parser.add_argument(
        "--code",
        action="append",
        required=True,
        help="fund code to serve (repeat, or comma-separated: --code 100 --code 300,500)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    store = parser.add_mutually_exclusive_group()
    store.add_argument(
        "--data-dir", type=Path, default=Path("var/mutualities"), help="SQLite files go here"
    )
    store.add_argument(
        "--database-url", help="PostgreSQL URL; one schema mutuality_<code> per fund"
    )
    parser.add_argument(
        "--members", type=Path, help="member list (JSON or CSV) replacing the built-in one"
    )
    parser.add_argument(
        "--tariffs", type=Path, help="tariff table (JSON) replacing the built-in one"
    )
    parser.add_argument("--settle-after-seconds", type=float, default=2.0, help="0 settles at once")
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument(
        "--error-rate", type=float, default=0.0, help="share of requests answered 503"
    )
    parser.add_argument(
        "--drop-after-commit-rate",
        type=float,
        default=0.0,
        help="share of POSTs committed, then dropped",
    )
    parser.add_argument(
        "--down", action="store_true", help="close every connection without answering"
    )
    parser.add_argument("--seed", type=int, help="makes fault injection deterministic")
    parser.add_argument("--log-format", choices=("json", "console"), default="json")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    for name in ("error_rate", "drop_after_commit_rate"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            parser.error(f"--{name.replace('_', '-')} must be between 0 and 1")
    if args.latency_ms < 0 or args.settle_after_seconds < 0:
        parser.error("--latency-ms and --settle-after-seconds must not be negative")
    return args


def config_from(args: argparse.Namespace) -> FundsConfig:
    codes = tuple(code.strip() for value in args.code for code in value.split(",") if code.strip())
    return FundsConfig(
        codes=codes,
        data_dir=args.data_dir,
        database_url=args.database_url,
        members_file=args.members,
        tariffs_file=args.tariffs,
        settle_after=timedelta(seconds=args.settle_after_seconds),
        faults=FaultSettings(
            latency_ms=args.latency_ms,
            error_rate=args.error_rate,
            drop_after_commit_rate=args.drop_after_commit_rate,
            down=args.down,
        ),
        seed=args.seed,
    )


def configure_logging(fmt: str, level: str) -> None:
    """JSON or console events on stderr. Events carry ids and reason codes, never an SSIN."""
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        config = config_from(args)
    except ValueError as exc:
        raise SystemExit(f"python -m mutualities: {exc}") from exc
    configure_logging(args.log_format, args.log_level)
    app = create_app(config)
    structlog.get_logger("mutualities").info(
        "mutualities_starting", funds=list(config.codes), host=args.host, port=args.port
    )
    # loop="asyncio": fault injection closes the asyncio transport itself (faults.py).
    # No access log: our own events say what happened, without query strings.
    uvicorn.run(
        app, host=args.host, port=args.port, loop="asyncio", access_log=False, log_level="warning"
    )


if __name__ == "__main__":
    main()
