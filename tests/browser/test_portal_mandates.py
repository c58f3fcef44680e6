"""A mandate in a real browser (issue 16, items 1 and 6; RX-16, PO-4): Jan gives Lotte a mandate
to collect his medicines and see his prescriptions; Lotte acts for him under a banner, sees his
prescription but no change she may not make, and goes back to herself; Jan ends the mandate and
Lotte, still on his page, is sent back to her own mandates. Checked over the API too: Jan's access
log names Lotte as the one who acted for him."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import JAN, LOTTE, Gateway, log_in
from tests.browser.test_portal_journeys import prescribe

pytestmark = pytest.mark.browser


@pytest.fixture
def second_page(chromium: Any, gateway: Gateway) -> Iterator[Any]:
    """The holder's own browser (cookies of his own), beside the mandator's ``page``."""
    context = chromium.new_context(
        base_url=gateway.base_url, locale="en-GB", viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(20_000)
    yield context.new_page()
    context.close()


def my_mandates(page: Any) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="My mandates").click()
    page.get_by_role("heading", name="My mandates", level=1).wait_for()


def test_RX_16_a_mandate_given_used_and_ended(
    page: Any, second_page: Any, gateway: Gateway, screenshots: Path
) -> None:
    created = prescribe(gateway, JAN)
    banner = f"You are acting for the person with national register number {JAN}."

    # Jan gives Lotte a mandate: collect and view, from today, no end.
    log_in(page, gateway, JAN)
    my_mandates(page)
    give = page.locator("form[aria-labelledby=give]")
    give.get_by_label("A person").check()
    give.get_by_label("National register number (SSIN)").fill(LOTTE)
    give.get_by_label("Collect my medicines").check()
    give.get_by_label("See my prescriptions and my data").check()
    give.get_by_role("button", name="Give the mandate").click()
    expect(page.get_by_role("status")).to_contain_text("The mandate has been given.")
    given = (
        page.get_by_role("table", name="Mandates I gave").get_by_role("row").filter(has_text=LOTTE)
    )
    expect(given).to_contain_text("Collect my medicines, See my prescriptions and my data")
    expect(given).to_contain_text("Active")
    page.screenshot(path=screenshots / "mandates.png", full_page=True)

    # Lotte acts for Jan: a banner on every page, his prescription, no reserve/delete/visibility.
    log_in(second_page, gateway, LOTTE)
    my_mandates(second_page)
    second_page.get_by_role("button", name=f"Act for {JAN}").click()
    expect(
        second_page.get_by_role("heading", name="Prescriptions of the person I act for")
    ).to_be_visible()
    expect(second_page.locator(".acting-for")).to_contain_text(banner)
    second_page.locator(f'a[href="/portal/prescriptions/{created["id"]}"]').click()
    expect(second_page.locator(".acting-for")).to_contain_text(banner)
    expect(second_page.get_by_text("Who may see this prescription")).to_be_visible()
    expect(second_page.get_by_role("button", name="Reserve")).to_have_count(0)
    expect(second_page.get_by_role("button", name="Delete…")).to_have_count(0)
    expect(second_page.get_by_role("button", name="Save visibility")).to_have_count(0)
    second_page.screenshot(path=screenshots / "acting-for.png", full_page=True)
    second_page.get_by_role("button", name="Back to myself").click()
    expect(second_page.locator(".acting-for")).to_have_count(0)

    # Jan's access log names Lotte: his holder read his prescriptions (permit-mandate).
    with gateway.api("demo-admin") as api:
        events = api.get("/AuditEvent", params={"patient": JAN, "_count": 50}).json()
    reasons = [
        (e["agent"][0]["who"]["identifier"]["value"], e.get("outcomeDesc"))
        for e in (entry["resource"] for entry in events.get("entry", []))
    ]
    assert (LOTTE, "permit-mandate") in reasons

    # Lotte acts for him again; Jan ends the mandate; her next page sends her back to herself.
    my_mandates(second_page)
    second_page.get_by_role("button", name=f"Act for {JAN}").click()
    expect(second_page.locator(".acting-for")).to_contain_text(banner)
    my_mandates(page)
    page.get_by_role("button", name=f"End the mandate of {LOTTE}").click()
    expect(page.get_by_role("status")).to_contain_text("The mandate has ended.")
    expect(given).to_contain_text("Ended")
    second_page.reload()
    expect(second_page.get_by_role("alert")).to_contain_text("This mandate is not active.")
    expect(second_page.locator(".acting-for")).to_have_count(0)
    expect(second_page.get_by_role("button", name=f"Act for {JAN}")).to_have_count(0)
