"""``python -m national_register --port 9200``: run the mock national register.

Every option is described by ``--help`` and in ``national_register/README.md``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog
import uvicorn

from national_register.app import create_app
from national_register.config import RegisterConfig
from national_register.faults import FaultSettings


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m national_register", description="Mock Belgian national register (eID cards)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9200)
    store = parser.add_mutually_exclusive_group()
    store.add_argument(
        "--data-dir",
        type=Path,
        default=Path("var/national_register"),
        help="the SQLite file goes here",
    )
    store.add_argument("--database-url", help="PostgreSQL URL; schema national_register")
    parser.add_argument(
        "--persons", type=Path, help="persons and cards to seed (JSON) instead of the built-in ones"
    )
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument(
        "--error-rate", type=float, default=0.0, help="share of checks answered 503"
    )
    parser.add_argument(
        "--drop-rate", type=float, default=0.0, help="share of checks closed without an answer"
    )
    parser.add_argument(
        "--down", action="store_true", help="close every check's connection without answering"
    )
    parser.add_argument("--seed", type=int, help="makes fault injection deterministic")
    parser.add_argument("--log-format", choices=("json", "console"), default="json")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    for name in ("error_rate", "drop_rate"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            parser.error(f"--{name.replace('_', '-')} must be between 0 and 1")
    if args.latency_ms < 0:
        parser.error("--latency-ms must not be negative")
    return args


def config_from(args: argparse.Namespace) -> RegisterConfig:
    return RegisterConfig(
        data_dir=args.data_dir,
        database_url=args.database_url,
        persons_file=args.persons,
        faults=FaultSettings(
            latency_ms=args.latency_ms,
            error_rate=args.error_rate,
            drop_rate=args.drop_rate,
            down=args.down,
        ),
        seed=args.seed,
    )


def configure_logging(fmt: str, level: str) -> None:
    """JSON or console events on stderr. Events carry results, never an SSIN or a card number."""
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
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
    configure_logging(args.log_format, args.log_level)
    try:
        app = create_app(config_from(args))
    except (ValueError, OSError) as exc:
        raise SystemExit(f"python -m national_register: {exc}") from exc
    structlog.get_logger("national_register").info(
        "national_register_starting", host=args.host, port=args.port
    )
    # loop="asyncio": fault injection closes the asyncio transport itself (faults.py). No access
    # log: our own events say what happened.
    uvicorn.run(
        app, host=args.host, port=args.port, loop="asyncio", access_log=False, log_level="warning"
    )


if __name__ == "__main__":
    main()
