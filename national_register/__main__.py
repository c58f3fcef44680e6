"""``python -m national_register --port 9200``: run the mock national register.

Every option is described by ``--help`` and in ``national_register/README.md``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from mock_services import serve
from mock_services.faults import DROP_NAMES
from national_register.app import create_app
from national_register.config import RegisterConfig


def _parser() -> argparse.ArgumentParser:
    parser = serve.parser(
        "national_register",
        "Mock Belgian national register (eID cards)",
        port=9200,
        schemas="schema national_register",
    )
    parser.add_argument(
        "--persons", type=Path, help="persons and cards to seed (JSON) instead of the built-in ones"
    )
    serve.add_fault_options(
        parser, DROP_NAMES, faulted="checks", drop_help="share of checks closed without an answer"
    )
    serve.add_log_options(parser)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return serve.parse(_parser(), argv, DROP_NAMES)


def config_from(args: argparse.Namespace) -> RegisterConfig:
    return RegisterConfig(
        data_dir=args.data_dir,
        database_url=args.database_url,
        persons_file=args.persons,
        faults=args.faults,
        seed=args.seed,
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    serve.start(args, "national_register", lambda: create_app(config_from(args)))


if __name__ == "__main__":
    main()
