"""The command line, logging and uvicorn run of a mock service (``python -m <service>``).

Each service's ``__main__`` builds its parser from :func:`parser`, adds what only it has, turns the
options into its config and hands over to :func:`start`; the fault options are named after its
:class:`DropNames`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import structlog
import uvicorn
from starlette.types import ASGIApp

from mock_services.faults import DropNames, FaultSettings


def parser(service: str, description: str, *, port: int, schemas: str) -> argparse.ArgumentParser:
    """The parser of ``python -m <service>`` with the options every mock has: ``--host``,
    ``--port``, and ``--data-dir`` (SQLite, default ``var/<service>``) or ``--database-url``
    (PostgreSQL, ``schemas`` says which), not both. The service adds its own, then
    :func:`add_fault_options` and :func:`add_log_options`, and reads them with :func:`parse`."""
    parser = argparse.ArgumentParser(prog=f"python -m {service}", description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    store = parser.add_mutually_exclusive_group()
    store.add_argument(
        "--data-dir", type=Path, default=Path("var", service), help="SQLite files go here"
    )
    store.add_argument("--database-url", help=f"PostgreSQL URL; {schemas}")
    return parser


def add_fault_options(
    parser: argparse.ArgumentParser, names: DropNames, *, faulted: str, drop_help: str
) -> None:
    """The initial faults (``--latency-ms``, ``--error-rate``, ``--<drop rate>``, ``--down``) on
    the service's ``faulted`` requests, and ``--seed``; :func:`parse` reads them back."""
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument(
        "--error-rate", type=float, default=0.0, help=f"share of {faulted} answered 503"
    )
    parser.add_argument(
        _option(names.rate),
        dest="drop_rate",
        metavar=names.rate.upper(),
        type=float,
        default=0.0,
        help=drop_help,
    )
    parser.add_argument(
        "--down", action="store_true", help=f"close the connection of all {faulted} unanswered"
    )
    parser.add_argument("--seed", type=int, help="makes fault injection deterministic")


def add_log_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-format", choices=("json", "console"), default="json")
    parser.add_argument("--log-level", default="INFO")


def parse(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None, names: DropNames
) -> argparse.Namespace:
    """The options, with ``faults`` (:class:`FaultSettings`) read from the fault options;
    out-of-range values exit with usage."""
    args = parser.parse_args(argv)
    for option, value in (("--error-rate", args.error_rate), (_option(names.rate), args.drop_rate)):
        if not 0.0 <= value <= 1.0:
            parser.error(f"{option} must be between 0 and 1")
    if args.latency_ms < 0:
        parser.error("--latency-ms must not be negative")
    args.faults = FaultSettings(
        latency_ms=args.latency_ms,
        error_rate=args.error_rate,
        drop_rate=args.drop_rate,
        down=args.down,
    )
    return args


def start(
    args: argparse.Namespace, service: str, build: Callable[[], ASGIApp], **details: Any
) -> None:
    """Configure logging, build the app, log ``<service>_starting`` and serve until stopped. A
    config the app refuses (bad fund code, store URL, seed file) exits with its message."""
    configure_logging(args.log_format, args.log_level)
    try:
        app = build()
    except (ValueError, OSError) as exc:
        raise SystemExit(f"python -m {service}: {exc}") from exc
    structlog.get_logger(service).info(
        f"{service}_starting", **details, host=args.host, port=args.port
    )
    _run(app, host=args.host, port=args.port)


def configure_logging(fmt: str, level: str) -> None:
    """JSON or console events on stderr. The services' events carry ids, results and reason codes,
    never an SSIN, a card number or a body (their process tests read the log)."""
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


def _run(app: ASGIApp, *, host: str, port: int) -> None:
    # loop="asyncio": fault injection closes the asyncio transport itself (faults.drop_connection).
    # No access log: the services' own events say what happened, without query strings.
    uvicorn.run(app, host=host, port=port, loop="asyncio", access_log=False, log_level="warning")


def _option(field: str) -> str:
    return "--" + field.replace("_", "-")
