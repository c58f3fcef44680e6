"""The patient portal in a real browser (issue 8, "Done means"): one patient journey per test, each
checked in the page and, where the rule is about other callers, over the API as those callers.

Journeys share one gateway process (module scope) and use the demo patients: Jan Peeters
(fund 100), Marie Dubois (fund 300), Lotte Janssens (fund 500).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import GP1, GP2, JAN, LOTTE, MARIE, PHARMACY, Gateway, log_in
from tests.claims.factories import claim, item
from tests.consents.factories import eid_headers, relationship
from tests.fhir_profiles.factories import medication_request
from tests.fixtures.fhir import rid_of

pytestmark = pytest.mark.browser


def prescribe(gateway: Gateway, ssin: str, nihdi: str = GP1, client_id: str = "demo-gp-1") -> Any:
    with gateway.api(client_id) as api:
        created = api.post("/MedicationRequest", json=medication_request(ssin=ssin, nihdi=nihdi))
    assert created.status_code == 201, created.text
    return created.json()


def pharmacy_search(gateway: Gateway, ssin: str) -> Any:
    with gateway.api("demo-pharmacy-1") as api:
        return api.get(
            "/MedicationRequest",
            params={"patient:identifier": ssin, "status": "active", "_count": 200},
            # The demo checks presence with its national register: the patient's own card.
            headers=eid_headers(card=gateway.card_number(ssin)),
        )


def test_login_and_logout(page: Any, gateway: Gateway, screenshots: Path) -> None:
    page.goto("/portal/")
    expect(page.get_by_role("heading", name="My health records")).to_be_visible()
    page.get_by_role("link", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/oauth/authorize\?"))
    page.screenshot(path=screenshots / "login.png", full_page=True)
    page.get_by_label("National register number (SSIN)").fill(JAN)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("not correct")
    page.get_by_label("National register number (SSIN)").fill(JAN)
    page.get_by_label("Password").fill(gateway.password(JAN))
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.screenshot(path=screenshots / "overview.png", full_page=True)
    cookie = next(c for c in page.context.cookies() if c["name"] == "portal_session")
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Lax"

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("link", name="Log in")).to_be_visible()
    page.goto("/portal/prescriptions")
    expect(page).to_have_url(re.compile(r"/portal/$"))
    expect(page.get_by_role("link", name="Log in")).to_be_visible()


def test_RX_13_a_hidden_prescription_leaves_the_pharmacy_search_but_not_the_rid_path(
    page: Any, gateway: Gateway, screenshots: Path
) -> None:
    created = prescribe(gateway, JAN)
    rid = rid_of(created)
    log_in(page, gateway, JAN)
    # A pharmacy's search by patient needs the patient's consent (CO-1): Jan gives it here.
    page.get_by_role("link", name="My consent").first.click()
    page.screenshot(path=screenshots / "consent.png", full_page=True)
    if page.get_by_role("button", name="Give my consent").count():
        page.get_by_role("button", name="Give my consent").click()
        expect(page.get_by_role("status")).to_contain_text("Consent given.")
    assert rid in [rid_of(e["resource"]) for e in pharmacy_search(gateway, JAN).json()["entry"]]

    page.get_by_role("navigation", name="Main").get_by_role("link", name="My prescriptions").click()
    row = page.get_by_role("row").filter(has_text=rid)
    expect(row).to_contain_text("Open")
    page.screenshot(path=screenshots / "prescriptions.png", full_page=True)
    row.get_by_role("link").first.click()
    expect(page.get_by_role("img", name=f"Barcode of prescription {rid}")).to_be_visible()
    barcode = page.request.get(f"/portal/prescriptions/{created['id']}/barcode.svg")
    assert barcode.status == 200
    assert barcode.headers["content-type"] == "image/svg+xml"
    page.get_by_label("No pharmacy (hidden)").check()
    page.get_by_role("button", name="Save visibility").click()
    expect(page.get_by_role("status")).to_contain_text("Visibility saved.")
    page.screenshot(path=screenshots / "prescription.png", full_page=True)

    found = pharmacy_search(gateway, JAN)
    assert found.status_code == 200, found.text
    assert rid not in [rid_of(e["resource"]) for e in found.json().get("entry", [])]
    with gateway.api("demo-pharmacy-1") as api:
        by_rid = api.get("/MedicationRequest", params={"identifier": rid})
    assert [e["resource"]["id"] for e in by_rid.json()["entry"]] == [created["id"]]


def test_CO_3_withdrawn_consent_refuses_a_providers_read(page: Any, gateway: Gateway) -> None:
    # Another physician reads the prescription with consent and a relationship (RX-9); a
    # pharmacy listing at its counter needs no consent (RX-18), so a physician is the witness.
    written = prescribe(gateway, MARIE)
    with gateway.api("demo-gp-2") as api:
        related = api.post(
            "/Consent", json=relationship(GP2, MARIE, card=gateway.card_number(MARIE))
        )
    assert related.status_code == 201, related.text

    def colleague_reads() -> Any:
        with gateway.api("demo-gp-2") as api:
            return api.get(f"/MedicationRequest/{written['id']}")

    log_in(page, gateway, MARIE)
    page.get_by_role("link", name="Manage my consent").click()
    page.get_by_role("button", name="Give my consent").click()
    expect(page.get_by_role("status")).to_contain_text("Consent given.")
    assert colleague_reads().status_code == 200
    page.get_by_role("button", name="Withdraw my consent").click()
    expect(page.get_by_role("status")).to_contain_text("Consent withdrawn.")
    expect(page.get_by_role("button", name="Give my consent")).to_be_visible()
    refused = colleague_reads()
    assert refused.status_code == 403
    assert refused.json()["issue"][0]["diagnostics"] == "no-consent"


def test_CO_10_adding_an_exclusion(page: Any, gateway: Gateway, screenshots: Path) -> None:
    log_in(page, gateway, LOTTE)
    page.get_by_role("link", name="My exclusions").click()
    page.get_by_label("Choose a provider").select_option(GP2)
    page.get_by_role("button", name="Exclude", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Exclusion added.")
    expect(page.get_by_role("row").filter(has_text=GP2)).to_contain_text("Dr. Luc Lambert")
    page.screenshot(path=screenshots / "exclusions.png", full_page=True)
    # The excluded physician is refused (CO-10, CO-12 step 3), with Lotte's consent and his eID
    # read as proof of presence.
    page.get_by_role("link", name="My consent").first.click()
    page.get_by_role("button", name="Give my consent").click()
    with gateway.api("demo-gp-2") as api:
        refused = api.post(
            "/Consent", json=relationship(GP2, LOTTE, card=gateway.card_number(LOTTE))
        )
    assert refused.status_code == 403, refused.text
    assert refused.json()["issue"][0]["diagnostics"] == "excluded"


def test_CO_5_ending_a_therapeutic_relationship(
    page: Any, gateway: Gateway, screenshots: Path
) -> None:
    with gateway.api("demo-gp-1") as api:
        created = api.post(
            "/Consent", json=relationship(GP1, LOTTE, card=gateway.card_number(LOTTE))
        )
    assert created.status_code == 201, created.text
    log_in(page, gateway, LOTTE)
    page.get_by_role("link", name="My therapeutic relationships").click()
    row = page.get_by_role("row").filter(has_text="Dr. An Claes")
    expect(row).to_contain_text("Active")
    page.screenshot(path=screenshots / "relationships.png", full_page=True)
    row.get_by_role("button", name="End").click()
    expect(page.get_by_role("status")).to_contain_text("The relationship has ended.")
    expect(page.get_by_role("row").filter(has_text="Dr. An Claes")).to_contain_text("Ended")
    with gateway.api("demo-gp-1") as api:
        ended = api.get(
            f"/Consent/{created.json()['id']}", headers=eid_headers(card=gateway.card_number(LOTTE))
        )
    assert ended.json()["status"] == "inactive"


def test_SEC_5_a_pharmacists_read_appears_in_the_access_log(
    page: Any, gateway: Gateway, screenshots: Path
) -> None:
    rid = rid_of(prescribe(gateway, JAN))
    with gateway.api("demo-pharmacy-1") as api:
        assert api.get("/MedicationRequest", params={"identifier": rid}).status_code == 200
    log_in(page, gateway, JAN)
    page.get_by_role("link", name="Who accessed my data").first.click()
    row = page.get_by_role("row").filter(has_text="Pharmacie du Centre").first
    expect(row).to_contain_text("Pharmacist")
    expect(row).to_contain_text(PHARMACY)
    expect(row).to_contain_text("Allowed")
    page.screenshot(path=screenshots / "access-log.png", full_page=True)
    # Filtering by a date range without the read hides it.
    page.get_by_label("From").fill("2020-01-01")
    page.get_by_label("To").fill("2020-01-31")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("No accesses in this period.")).to_be_visible()


def test_AT_1_a_reimbursement_appears_once_the_fund_settles(
    page: Any, gateway: Gateway, screenshots: Path
) -> None:
    body = claim(patient=MARIE, insurer="300", provider=GP1, items=[item()])
    with gateway.api("demo-gp-1") as api:
        sent = api.post("/Claim", json=body, headers={"Idempotency-Key": f"portal-{time.time()}"})
        assert sent.status_code == 202, sent.text
        claim_id = sent.json()["id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            answers = api.get("/ClaimResponse", params={"request": f"Claim/{claim_id}"}).json()
            settled = [
                e
                for e in answers.get("entry", [])
                if any(t.get("code") == "settled" for t in e["resource"]["meta"].get("tag", []))
            ]
            if settled:
                break
            time.sleep(0.5)
        else:
            pytest.fail("the fund did not settle the claim in time")
    log_in(page, gateway, MARIE)
    page.get_by_role("link", name="Attestations and reimbursements").first.click()
    row = page.get_by_role("row").filter(has_text="Dr. An Claes").first
    expect(row).to_contain_text("Reimbursed")
    expect(row).to_contain_text("€")
    page.screenshot(path=screenshots / "attestations.png", full_page=True)


def test_switching_to_dutch_and_french(page: Any, gateway: Gateway, screenshots: Path) -> None:
    log_in(page, gateway, JAN)
    page.get_by_role("button", name="Nederlands").click()
    expect(page.get_by_role("heading", name="Overzicht")).to_be_visible()
    assert page.locator("html").get_attribute("lang") == "nl"
    page.screenshot(path=screenshots / "overview-nl.png", full_page=True)
    page.get_by_role("link", name="Mijn voorschriften").first.click()
    expect(page.get_by_role("heading", name="Mijn voorschriften")).to_be_visible()
    page.get_by_role("button", name="Français").click()
    expect(page.get_by_role("heading", name="Mes prescriptions")).to_be_visible()
    assert page.locator("html").get_attribute("lang") == "fr"
    page.screenshot(path=screenshots / "prescriptions-fr.png", full_page=True)
    # The choice persists: a new page load, and the login page of a new session.
    page.goto("/portal/consent")
    expect(page.get_by_role("heading", name="Mon consentement")).to_be_visible()
    page.get_by_role("button", name="Se déconnecter").click()
    page.get_by_role("link", name="Se connecter").click()
    expect(page.get_by_label("Numéro de registre national (NISS)")).to_be_visible()


def test_PO_4_patient_A_cannot_reach_patient_Bs_pages(page: Any, gateway: Gateway) -> None:
    theirs = prescribe(gateway, MARIE)
    log_in(page, gateway, JAN)
    for path in (
        f"/portal/prescriptions/{theirs['id']}",
        f"/portal/prescriptions/{theirs['id']}/barcode.svg",
    ):
        response = page.goto(path)
        assert response is not None, path
        assert response.status == 403, path
    expect(page.get_by_text("You may not see this page.")).to_be_visible()
    assert rid_of(theirs) not in page.content()
