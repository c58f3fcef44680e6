"""``python -m mutualities`` options."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from mutualities.__main__ import config_from, parse_args


def test_options_become_a_config() -> None:
    argv = """--code 100 --code 300,500 --port 9100 --data-dir /tmp/x --latency-ms 20
        --error-rate 0.2 --drop-after-commit-rate 0.1 --settle-after-seconds 0 --seed 3
        --members m.csv"""
    args = parse_args(argv.split())
    config = config_from(args)
    assert config.codes == ("100", "300", "500")
    assert config.data_dir == Path("/tmp/x")
    assert config.database_url is None
    assert config.settle_after == timedelta(0)
    assert (config.faults.latency_ms, config.faults.error_rate) == (20, 0.2)
    assert config.faults.drop_rate == 0.1
    assert not config.faults.down
    assert (config.seed, config.members_file) == (3, Path("m.csv"))
    assert args.port == 9100


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--code", "100", "--error-rate", "1.5"],
        ["--code", "100", "--data-dir", "x", "--database-url", "postgresql://h/db"],
    ],
)
def test_bad_options_exit(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv)


@pytest.mark.parametrize("codes", [["10"], ["100", "100"]])
def test_bad_codes_are_refused(codes: list[str]) -> None:
    args = parse_args([arg for code in codes for arg in ("--code", code)])
    with pytest.raises(ValueError):
        config_from(args)


def test_the_drop_option_is_named_after_commit() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--code", "100", "--drop-rate", "0.1"])
    with pytest.raises(SystemExit):
        parse_args(["--code", "100", "--drop-after-commit-rate", "1.1"])
    with pytest.raises(SystemExit):
        parse_args(["--code", "100", "--settle-after-seconds", "-1"])
