"""The demo's sickness funds: ``gateway demo`` starts ``python -m mutualities`` for the demo
patients' funds (unless ``GATEWAY_MUTUALITY_URLS`` names funds already running), so that the demo's
attestations are acknowledged and settled, maximum billing included (mutualities/README.md). The
funds are reached over HTTP only, like the gateway always reaches them."""

from __future__ import annotations

from pathlib import Path

from gateway.demo_data import CHILD, PATIENTS
from gateway.demo_process import DemoProcess

DEMO_FUNDS_PORT = 9100
# Settled this long after their acknowledgement: the demo's claims are reimbursed while it starts.
SETTLE_AFTER_SECONDS = 2


class DemoFunds(DemoProcess):
    """The funds process this demo started (stopped with the demo); ``urls`` by fund code."""

    def __init__(self, data_dir: Path) -> None:
        codes = sorted({patient.fund_code for patient in (*PATIENTS, CHILD)})
        super().__init__(
            "sickness funds",
            "mutualities",
            [
                *(arg for code in codes for arg in ("--code", code)),
                "--data-dir",
                str(data_dir / "mutualities"),
                "--settle-after-seconds",
                str(SETTLE_AFTER_SECONDS),
                "--log-format",
                "console",
            ],
            data_dir,
            DEMO_FUNDS_PORT,
            instead="; or set GATEWAY_MUTUALITY_URLS to funds already running",
        )
        self.urls = {code: f"{self.url}/funds/{code}" for code in codes}
