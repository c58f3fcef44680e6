"""The patient deletes a prescription and reserves one at a pharmacy, in a real browser (issue 16,
items 2, 3 and 6; RX-7 "verwijderen", RX-15), each checked in the page and over the API as the
author and the pharmacies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import JAN, MARIE, PHARMACY, Gateway, log_in
from tests.browser.test_portal_journeys import prescribe
from tests.fixtures.fhir import rid_of

pytestmark = pytest.mark.browser

OTHER_PHARMACY = "06054321"  # demo-pharmacy-2, Apotheek De Linde (gateway/demo_data.py)


def open_prescription(page: Any, rid: str) -> None:
    """From the main navigation to the prescription's own page, as a patient finds it."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="My prescriptions").click()
    page.get_by_role("row").filter(has_text=rid).get_by_role("link").first.click()
    expect(page.get_by_text(rid).first).to_be_visible()


def reserved_at(gateway: Gateway, client_id: str, nihdi: str) -> list[str]:
    with gateway.api(client_id) as api:
        found = api.get("/MedicationRequest", params={"reserved-at": nihdi})
    assert found.status_code == 200, found.text
    return [rid_of(e["resource"]) for e in found.json().get("entry", [])]


def test_RX_7_the_patient_deletes_an_open_prescription_after_confirming(
    page: Any, gateway: Gateway, screenshots: Path
) -> None:
    created = prescribe(gateway, JAN)
    rid = rid_of(created)
    log_in(page, gateway, JAN)
    open_prescription(page, rid)
    page.get_by_role("button", name="Delete…").click()

    # The confirmation step: nothing changes until the patient confirms.
    expect(page.get_by_role("heading", name="Delete this prescription?")).to_be_visible()
    expect(page.get_by_text(rid)).to_be_visible()
    page.screenshot(path=screenshots / "prescription-delete.png", full_page=True)
    page.get_by_role("link", name="No, keep it").click()
    expect(page.get_by_role("button", name="Delete…")).to_be_visible()
    with gateway.api("demo-gp-1") as api:
        assert api.get(f"/MedicationRequest/{created['id']}").json()["status"] == "active"

    page.get_by_role("button", name="Delete…").click()
    page.get_by_role("button", name="Yes, delete this prescription").click()
    expect(page.get_by_role("status")).to_contain_text("The prescription has been deleted.")
    expect(page.locator(".details")).to_contain_text("Deleted by me")
    expect(page.get_by_role("button", name="Delete…")).to_have_count(0)

    # The author sees that the patient deleted it; a pharmacy with the RID sees its state only.
    with gateway.api("demo-gp-1") as api:
        seen = api.get(f"/MedicationRequest/{created['id']}").json()
    assert seen["status"] == "cancelled"
    assert seen["statusReason"]["coding"][0]["code"] == "deleted-by-patient"
    with gateway.api("demo-pharmacy-1") as api:
        by_rid = api.get("/MedicationRequest", params={"identifier": rid}).json()
    [shown] = [e["resource"] for e in by_rid["entry"]]
    assert shown["status"] == "cancelled"
    assert "medicationCodeableConcept" not in shown


def test_RX_15_the_patient_reserves_at_a_pharmacy_and_cancels(
    page: Any, gateway: Gateway, screenshots: Path
) -> None:
    rid = rid_of(prescribe(gateway, MARIE))
    log_in(page, gateway, MARIE)
    open_prescription(page, rid)
    reserve = page.get_by_role("region", name="Reserve at a pharmacy")
    reserve.get_by_label("Pharmacy").select_option(label=f"Pharmacie du Centre ({PHARMACY})")
    reserve.get_by_role("button", name="Reserve").click()
    expect(page.get_by_role("status")).to_contain_text("The prescription is reserved.")
    reservation = page.get_by_role("region", name="My reservation")
    expect(reservation).to_contain_text("Reserved at: Pharmacie du Centre")
    expect(page.locator(".details")).to_contain_text("In process at a pharmacy")
    page.screenshot(path=screenshots / "prescription-reserved.png", full_page=True)

    # The pharmacy lists it among its reservations; another pharmacy cannot see that list.
    assert rid in reserved_at(gateway, "demo-pharmacy-1", PHARMACY)
    assert reserved_at(gateway, "demo-pharmacy-2", PHARMACY) == []
    assert rid not in reserved_at(gateway, "demo-pharmacy-2", OTHER_PHARMACY)

    reservation.get_by_role("button", name="Cancel the reservation").click()
    expect(page.get_by_role("status")).to_contain_text("The reservation has been cancelled.")
    expect(page.locator(".details")).to_contain_text("Open")
    expect(page.get_by_role("region", name="Reserve at a pharmacy")).to_be_visible()
    assert rid not in reserved_at(gateway, "demo-pharmacy-1", PHARMACY)
