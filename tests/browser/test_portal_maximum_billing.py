"""Maximum billing in a real browser (issue 17, item 4): ``gateway demo`` sends this year's
attestations of the Peeters household (Jan and his daughter Noor, the lowest income bracket); the
fund settles them past the household's ceiling, and Jan's attestations page shows the household's
running total against its ceiling, the date it was reached, and what the fund paid on top."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from fhir_profiles.dates import brussels_date
from tests.browser.conftest import JAN, Gateway, log_in

pytestmark = pytest.mark.browser


def test_AT_1_a_household_past_its_ceiling(page: Any, gateway: Gateway, screenshots: Path) -> None:
    [household] = gateway.manifest["households"]
    assert JAN in household["members"]
    assert household["ceiling"] == "254.99"
    assert len(household["claims"]) >= 3
    log_in(page, gateway, JAN)
    page.get_by_role("link", name="Attestations and reimbursements").first.click()
    year = brussels_date(datetime.now(UTC)).year
    section = page.locator("section.maximum-billing")
    # The demo's claims settle a few seconds after it starts, one by one: reload until the fund
    # has settled them all (the ceiling is crossed before the last one is counted).
    deadline = time.monotonic() + 90
    while not all(
        s in (section.all_inner_texts() or [""])[0] for s in ("Ceiling reached", "270,00")
    ):
        if time.monotonic() > deadline:
            pytest.fail("the fund did not settle the household's claims past the ceiling")
        time.sleep(1)
        page.reload()
    expect(section.get_by_role("heading", name=f"Maximum billing {year}")).to_be_visible()
    # 120 + 100 + 40 + 10 in patient shares (mutualities/data/tariffs.json), ceiling 254.99
    expect(section).to_contain_text("270,00")  # the portal writes money as Belgians do
    expect(section).to_contain_text("254,99")
    expect(section).to_contain_text("since then your fund also pays your patient share, in full")
    meter = section.get_by_role("meter")
    assert meter.get_attribute("value") == meter.get_attribute("max") == "254.99"
    # The settlement that crossed the ceiling, or the one after it, says what the fund paid on top.
    expect(page.get_by_text("under maximum billing").first).to_be_visible()
    row = page.get_by_role("row").filter(has_text="under maximum billing").first
    expect(row).to_contain_text("Dr. An Claes")
    expect(row).to_contain_text("Reimbursed")
    page.screenshot(path=screenshots / "attestations-maximum-billing.png", full_page=True)

    page.get_by_role("button", name="Nederlands").click()
    expect(page.get_by_role("heading", name=f"Maximumfactuur {year}")).to_be_visible()
    expect(page.locator("section.maximum-billing")).to_contain_text("Grensbedrag bereikt op")
    page.get_by_role("button", name="Français").click()
    expect(page.get_by_role("heading", name=f"Maximum à facturer {year}")).to_be_visible()
    expect(page.locator("section.maximum-billing")).to_contain_text("Plafond atteint le")
