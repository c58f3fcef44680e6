"""The demo's national register: ``gateway demo`` starts ``python -m national_register`` beside
the gateway (unless ``GATEWAY_NATIONAL_REGISTER_URL`` points at one already running), issues each
demo patient's eID card there and configures the gateway to check proofs of presence with it
(docs/access.md, "Presence proofs"). The register is reached over HTTP only, like the gateway
reaches it."""

from __future__ import annotations

from pathlib import Path

import httpx

from gateway.demo_data import PATIENTS
from gateway.demo_process import DemoProcess

DEMO_REGISTER_PORT = 9200


class DemoRegister(DemoProcess):
    """A register process this demo started (stopped with the demo)."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        super().__init__(
            "national register",
            "national_register",
            ["--data-dir", str(data_dir / "national_register"), "--log-format", "console"],
            data_dir,
            port or DEMO_REGISTER_PORT,
            instead="; or set GATEWAY_NATIONAL_REGISTER_URL to a register already running",
        )


def issue_demo_cards(url: str) -> None:
    """Each demo patient's card is their current card in the register (again on every run: a
    card already theirs is left as it is)."""
    with httpx.Client(base_url=url, timeout=5) as client:
        for patient in PATIENTS:
            response = client.post(
                "/admin/cards", json={"ssin": patient.ssin, "card_number": patient.card_number}
            )
            if response.status_code not in (200, 201):
                raise SystemExit(
                    f"the national register refused a demo card: HTTP {response.status_code}"
                )
