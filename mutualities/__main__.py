"""``python -m mutualities --code 100 --port 9100 [--code 300 ...]``: run mock sickness funds.

Every option is described by ``--help`` and in ``mutualities/README.md``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from mock_services import serve
from mutualities.app import create_app
from mutualities.config import FundsConfig
from mutualities.faults import DROP


def _parser() -> argparse.ArgumentParser:
    parser = serve.parser(
        "mutualities",
        "Mock Belgian sickness funds",
        port=9100,
        schemas="one schema mutuality_<code> per fund",
    )
    parser.add_argument(
        "--code",
        action="append",
        required=True,
        help="fund code to serve (repeat, or comma-separated: --code 100 --code 300,500)",
    )
    parser.add_argument(
        "--members", type=Path, help="member list (JSON or CSV) replacing the built-in one"
    )
    parser.add_argument(
        "--tariffs", type=Path, help="tariff table (JSON) replacing the built-in one"
    )
    parser.add_argument(
        "--households", type=Path, help="maximum-billing households (JSON) replacing the built-in"
    )
    parser.add_argument(
        "--ceilings", type=Path, help="maximum-billing ceilings (JSON), replacing the built-in"
    )
    parser.add_argument("--settle-after-seconds", type=float, default=2.0, help="0 settles at once")
    serve.add_fault_options(
        parser, DROP, faulted="requests", drop_help="share of POSTs committed, then dropped"
    )
    serve.add_log_options(parser)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = _parser()
    args = serve.parse(parser, argv, DROP)
    if args.settle_after_seconds < 0:
        parser.error("--settle-after-seconds must not be negative")
    return args


def config_from(args: argparse.Namespace) -> FundsConfig:
    return FundsConfig(
        codes=_codes(args),
        data_dir=args.data_dir,
        database_url=args.database_url,
        members_file=args.members,
        tariffs_file=args.tariffs,
        households_file=args.households,
        ceilings_file=args.ceilings,
        settle_after=timedelta(seconds=args.settle_after_seconds),
        faults=args.faults,
        seed=args.seed,
    )


def _codes(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(code.strip() for value in args.code for code in value.split(",") if code.strip())


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    serve.start(args, "mutualities", lambda: create_app(config_from(args)), funds=_codes(args))


if __name__ == "__main__":
    main()
