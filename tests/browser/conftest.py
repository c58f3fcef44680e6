"""Browser tests: Debian's chromium (``/usr/bin/chromium``, headless) driven by Playwright for Python
against a real gateway: ``gateway demo`` in a uvicorn process of its own (its own SQLite file, or
the PostgreSQL test database), with a real mock-fund process (``python -m mutualities``) for the
claims, seeded through the real API with tokens from ``gateway token``.

Screenshots go to a temporary directory, or to ``docs/screenshots/`` when ``GATEWAY_SCREENSHOTS=1``
(``make screenshots``), so an ordinary test run leaves the working tree alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from gateway.db import sync_url
from gateway.storage.tables import metadata
from tests.fixtures.processes import ROOT, Process, free_port, wait_healthy

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
PG_URL = os.environ.get("GATEWAY_TEST_DATABASE_URL")
FUNDS = ("100", "300", "500")
JAN, MARIE, LOTTE = "85073003328", "93051822361", "01010100126"  # gateway/demo_data.py
GP1, GP2 = "19234011004", "12345625004"
PHARMACY = "06012345"


@dataclass
class Gateway:
    base_url: str
    data_dir: Path
    env: dict[str, str]
    manifest: dict[str, Any]
    tokens: dict[str, str] = field(default_factory=dict)

    def password(self, ssin: str) -> str:
        found = next(p for p in self.manifest["patients"] if p["ssin"] == ssin)
        password: str = found["password"]
        return password

    def card_number(self, ssin: str) -> str:
        """The patient's current eID card in the demo's national register (the manifest)."""
        found = next(p for p in self.manifest["patients"] if p["ssin"] == ssin)
        card: str = found["card_number"]
        return card

    def token(self, client_id: str) -> str:
        """A fresh access token from ``gateway token`` (the CLI signs a private_key_jwt
        assertion with the demo client's key and calls /oauth/token)."""
        done = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "token", "--client-id", client_id,
             "--data-dir", str(self.data_dir)],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def api(self, client_id: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url + "/fhir",
            headers={
                "authorization": f"Bearer {self.token(client_id)}",
                "accept": "application/fhir+json",
                "content-type": "application/fhir+json",
            },
            timeout=30,
        )


def _empty_postgres(url: str) -> None:
    engine = create_engine(sync_url(url))
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(t.name for t in metadata.sorted_tables)}"))
    engine.dispose()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("GATEWAY_SCREENSHOTS") == "1":
        target = ROOT / "docs" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        return target
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, _migrated: str) -> Iterator[Gateway]:
    """``gateway demo`` (SQLite or PostgreSQL) and the three demo patients' funds."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    tmp = tmp_path_factory.mktemp("portal-e2e")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "MUTUALITIES_"))}
    fund_port, port = free_port(), free_port()
    fund = Process(
        "funds",
        [sys.executable, "-m", "mutualities", *[a for c in FUNDS for a in ("--code", c)],
         "--port", str(fund_port), "--data-dir", str(tmp / "funds"),
         "--settle-after-seconds", "1", "--log-level", "WARNING"],
        env, tmp / "funds.log",
    )  # fmt: skip
    gateway_env = {
        **env,
        "GATEWAY_MUTUALITY_URLS": ",".join(
            f"{c}=http://127.0.0.1:{fund_port}/funds/{c}" for c in FUNDS
        ),
        "GATEWAY_WORKER_IN_PROCESS": "true",
        "GATEWAY_SETTLEMENT_POLL_SECONDS": "0.5",
        "GATEWAY_LOG_FORMAT": "console",
    }
    if PG_URL:
        _empty_postgres(PG_URL)
        gateway_env["GATEWAY_DATABASE_URL"] = PG_URL
    data_dir = tmp / "data"
    server = Process(
        "gateway",
        [sys.executable, "-m", "gateway.cli", "demo", "--port", str(port),
         "--data-dir", str(data_dir)],
        gateway_env, tmp / "gateway.log",
    )  # fmt: skip
    try:
        fund.start()
        wait_healthy(fund, f"http://127.0.0.1:{fund_port}/healthz", timeout=60)
        server.start()
        base_url = f"http://127.0.0.1:{port}"
        wait_healthy(server, f"{base_url}/healthz", timeout=120)
        manifest = json.loads((data_dir / "demo" / "manifest.json").read_text())
        yield Gateway(base_url, data_dir, gateway_env, manifest)
    finally:
        server.stop()
        fund.stop()
        if PG_URL:
            _empty_postgres(PG_URL)
        shutil.rmtree(tmp / "funds", ignore_errors=True)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any, gateway: Gateway) -> Iterator[Any]:
    """A fresh browser context (no cookies) per test, English unless the test says otherwise."""
    context = chromium.new_context(
        base_url=gateway.base_url, locale="en-GB", viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(20_000)
    tab = context.new_page()
    yield tab
    context.close()


def log_in(page: Any, gateway: Gateway, ssin: str) -> None:
    page.goto("/portal/")
    page.get_by_role("link", name="Log in").click()
    page.get_by_label("National register number (SSIN)").fill(ssin)
    page.get_by_label("Password").fill(gateway.password(ssin))
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Overview").wait_for()
