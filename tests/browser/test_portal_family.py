"""A parent acts for his child under 12 in a real browser (issue 16, items 1 and 6; PO-3): the demo
links Jan as the father of Noor (born 2020); on "My mandates" Jan types her number, acts for her
under the banner and sees her prescription; a number that is not his child's is refused."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import JAN, MARIE, Gateway, log_in

pytestmark = pytest.mark.browser


def test_PO_3_a_parent_acts_for_his_young_child(page: Any, gateway: Gateway) -> None:
    [family] = gateway.manifest["family"]
    assert family["parent"] == JAN
    child = family["child"]
    log_in(page, gateway, JAN)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="My mandates").click()
    form = page.locator("form[aria-labelledby=child]")

    form.get_by_label("Your child's national register number").fill(MARIE)
    form.get_by_role("button", name="Act for my child").click()
    expect(page.get_by_role("alert")).to_contain_text("not registered as a parent")

    form = page.locator("form[aria-labelledby=child]")
    form.get_by_label("Your child's national register number").fill(child)
    form.get_by_role("button", name="Act for my child").click()
    expect(
        page.get_by_role("heading", name="Prescriptions of the person I act for")
    ).to_be_visible()
    expect(page.locator(".acting-for")).to_contain_text(child)
    expect(page.get_by_role("link", name="Paracetamolum", exact=False)).to_be_visible()
