"""What one mutualities process runs: which funds, where they store, how they misbehave."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from mock_services.faults import FaultSettings

FUND_CODE = re.compile(r"^\d{3}$")


@dataclass(frozen=True)
class FundsConfig:
    codes: tuple[str, ...]
    """Fund codes served (domain ID-13: 100, 200, 300, 400, 500, 600, 900; any 3 digits work)."""
    data_dir: Path = Path("var/mutualities")
    """SQLite files ``mutuality_<code>.db`` go here unless ``database_url`` is set."""
    database_url: str | None = None
    """PostgreSQL URL; each fund gets the schema ``mutuality_<code>``."""
    members_file: Path | None = None
    tariffs_file: Path | None = None
    households_file: Path | None = None
    ceilings_file: Path | None = None
    """Maximum billing: households with their income brackets, ceilings per bracket."""
    settle_after: timedelta = timedelta(seconds=2)
    faults: FaultSettings = field(default_factory=FaultSettings)
    """Initial faults, the same for every fund of the process."""
    seed: int | None = None

    def __post_init__(self) -> None:
        if not self.codes:
            raise ValueError("at least one fund code is needed")
        for code in self.codes:
            if not FUND_CODE.match(code):
                raise ValueError(f"fund code must be 3 digits: {code!r}")
        if len(set(self.codes)) != len(self.codes):
            raise ValueError("a fund code is given twice")
        if self.settle_after < timedelta(0):
            raise ValueError("settle_after must not be negative")
