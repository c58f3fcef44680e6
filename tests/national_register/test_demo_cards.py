"""``gateway demo`` runs a national register beside the gateway (CO-2, RX-18 b): each demo patient's
card, listed in the manifest, is their current card there, run after run."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from gateway import demo
from gateway.demo_data import PATIENTS
from gateway.demo_register import DemoRegister, issue_demo_cards
from tests.fixtures.processes import free_port

pytestmark = pytest.mark.e2e


def test_co2_the_demo_patients_cards_are_current_and_in_the_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("GATEWAY_DATABASE_URL", "GATEWAY_ENCRYPTION_KEY", "GATEWAY_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    register = DemoRegister(tmp_path, port=free_port())
    try:
        issue_demo_cards(register.url)
        issue_demo_cards(register.url)  # the next run of the demo
        for patient in PATIENTS:
            answer = httpx.post(
                f"{register.url}/checks",
                json={"ssin": patient.ssin, "card_number": patient.card_number},
            ).json()
            assert answer["result"] == "valid"
        settings = demo.prepare(
            host="127.0.0.1",
            port=free_port(),
            data_dir=tmp_path,
            national_register_url=register.url,
        )
    finally:
        register.stop()
    assert settings.national_register_url == register.url
    manifest = json.loads((tmp_path / "demo" / "manifest.json").read_text())
    assert manifest["national_register"] == register.url
    cards = {p["ssin"]: p["card_number"] for p in manifest["patients"]}
    assert cards == {p.ssin: p.card_number for p in PATIENTS}


def test_a_second_demo_gets_a_register_of_its_own(tmp_path: Path) -> None:
    first = DemoRegister(tmp_path / "first")
    try:
        second = DemoRegister(tmp_path / "second")  # port 9200 is taken by now: another one
        try:
            assert second.url != first.url
            for register in (first, second):
                assert httpx.get(f"{register.url}/healthz").status_code == 200
        finally:
            second.stop()
    finally:
        first.stop()
