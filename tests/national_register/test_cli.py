"""``python -m national_register`` options: the faults it starts with, and the ones it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from mock_services.faults import FaultSettings
from national_register.__main__ import config_from, parse_args


def test_options_become_a_config() -> None:
    argv = """--port 9300 --data-dir /tmp/nr --persons p.json --latency-ms 15 --error-rate 0.25
        --drop-rate 0.5 --down --seed 7"""
    args = parse_args(argv.split())
    config = config_from(args)
    assert config.faults == FaultSettings(latency_ms=15, error_rate=0.25, drop_rate=0.5, down=True)
    assert (config.seed, config.data_dir, config.persons_file) == (
        7,
        Path("/tmp/nr"),
        Path("p.json"),
    )
    assert (config.database_url, args.port) == (None, 9300)


@pytest.mark.parametrize(
    "argv",
    [
        ["--drop-rate", "1.5"],
        ["--error-rate", "-0.1"],
        ["--latency-ms", "-1"],
        ["--drop-after-commit-rate", "0.1"],  # the funds' option, not the register's
        ["--data-dir", "x", "--database-url", "postgresql://h/db"],
    ],
)
def test_bad_options_exit(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv)
