"""The real thing: ``python -m national_register`` in its own process, spoken to over TCP. Shows
what only a real server can: a connection closed without an answer, a store that outlives the
process, and a log without SSINs or card numbers."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.eid import card_number
from tests.fixtures.processes import ROOT, Process, start_national_register
from tests.national_register.test_register_http import JAN, JAN_CARD, MARIE

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("register")


@pytest.fixture(scope="module")
def register(workdir: Path) -> Iterator[tuple[Process, str]]:
    process, base = start_national_register(workdir, "--seed", "3")
    yield process, base
    process.stop()


def check(base: str, ssin: str, card: str) -> httpx.Response:
    return httpx.post(f"{base}/checks", json={"ssin": ssin, "card_number": card}, timeout=5)


def test_down_closes_the_connection_without_an_answer(register: tuple[Process, str]) -> None:
    _process, base = register
    httpx.post(f"{base}/admin/faults", json={"down": True}, timeout=5)
    try:
        with pytest.raises(httpx.TransportError):
            check(base, JAN, JAN_CARD)
    finally:
        httpx.post(f"{base}/admin/faults", json={"down": False}, timeout=5)
    assert check(base, JAN, JAN_CARD).json()["result"] == "valid"


def test_an_issued_card_outlives_the_process_and_the_log_names_no_one(workdir: Path) -> None:
    card = card_number("6100000001")
    process, base = start_national_register(workdir)
    try:
        issued = httpx.post(
            f"{base}/admin/cards", json={"ssin": MARIE, "card_number": card}, timeout=5
        )
        assert issued.status_code == 201
    finally:
        process.stop()
    process, base = start_national_register(workdir)
    try:
        assert check(base, MARIE, card).json()["result"] == "valid"
        assert check(base, JAN, card).json()["result"] == "not-holder"
    finally:
        process.stop()
    log = process.log_path.read_text()
    assert "card_checked" in log
    assert MARIE not in log
    assert JAN not in log
    assert card not in log


def test_the_register_never_imports_the_gateway() -> None:
    code = (
        "import sys, national_register.__main__, national_register.app; "
        "sys.exit(any(m.split('.')[0] in ('gateway', 'fhir_profiles', 'consent') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=False).returncode == 0
