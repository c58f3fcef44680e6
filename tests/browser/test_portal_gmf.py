"""The GMF choice in the portal, in a real browser (issue 16 items 5 and 6; domain RX-14): the patient
shows a prescription to the GPs of the GMF practice; the demo's two GPs share one (``make demo``
seeds it and lists it in the manifest), so the second GP reads it; once the operator removes him
from the practice (``gateway gmf remove-member``) he is refused it and only told that a hidden
prescription exists. The page offers the choice in English, Dutch and French."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from fhir_profiles import systems
from tests.browser.conftest import GP1, GP2, LOTTE, Gateway, log_in
from tests.browser.test_portal_journeys import prescribe
from tests.consents.factories import relationship
from tests.fixtures.processes import ROOT

pytestmark = pytest.mark.browser

GMF_LABEL = "The prescriber who wrote it and the GPs of my GMF practice"


def gmf(gateway: Gateway, *args: str) -> subprocess.CompletedProcess[str]:
    """``gateway gmf ...`` on the demo's data, as the operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "gmf", *args, "--data-dir", str(gateway.data_dir)],
        cwd=ROOT, env=gateway.env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def second_gp_reads(gateway: Gateway, logical_id: str) -> Any:
    with gateway.api("demo-gp-2") as api:
        return api.get(f"/MedicationRequest/{logical_id}")


def second_gp_searches(gateway: Gateway) -> tuple[set[str], list[str]]:
    """The ids the second GP finds for the patient, and what the Bundle tells him besides."""
    with gateway.api("demo-gp-2") as api:
        found = api.get(
            "/MedicationRequest", params={"patient:identifier": f"{systems.SSIN}|{LOTTE}"}
        )
    assert found.status_code == 200, found.text
    entries = found.json().get("entry", [])
    matched = {e["resource"]["id"] for e in entries if e["search"]["mode"] == "match"}
    told = [
        issue["diagnostics"]
        for e in entries
        if e["search"]["mode"] == "outcome"
        for issue in e["resource"]["issue"]
    ]
    return matched, told


def test_RX_14_the_patient_shows_a_prescription_to_the_GMF_practice_only(
    page: Any, gateway: Gateway, screenshots: Path
) -> None:
    # make demo: the two demo GPs share a GMF practice, in the manifest and in the database.
    [practice] = gateway.manifest["gmf_practices"]
    assert sorted(practice["members"]) == sorted([GP1, GP2])
    listed = gmf(gateway, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert sorted(r["nihdi"] for r in json.loads(listed.stdout)) == sorted([GP1, GP2])

    written = prescribe(gateway, LOTTE)
    with gateway.api("demo-gp-2") as api:
        related = api.post(
            "/Consent", json=relationship(GP2, LOTTE, card=gateway.card_number(LOTTE))
        )
    assert related.status_code == 201, related.text

    log_in(page, gateway, LOTTE)
    page.get_by_role("link", name="Manage my consent").click()
    page.get_by_role("button", name="Give my consent").click()  # a fresh demo: none given yet
    expect(page.get_by_role("status")).to_contain_text("Consent given.")
    page.goto(f"/portal/prescriptions/{written['id']}")
    choice = page.get_by_label(GMF_LABEL)
    expect(choice).not_to_be_checked()
    choice.check()
    page.get_by_role("button", name="Save visibility").click()
    expect(page.get_by_role("status")).to_contain_text("Visibility saved.")
    expect(page.get_by_label(GMF_LABEL)).to_be_checked()
    expect(page.get_by_text("my prescriber and the GPs of my GMF practice")).to_be_visible()
    page.screenshot(path=screenshots / "prescription-gmf.png", full_page=True)

    # The other GP of the practice reads it and finds it, with consent and his relationship.
    assert second_gp_reads(gateway, written["id"]).status_code == 200
    assert written["id"] in second_gp_searches(gateway)[0]

    # The operator removes him from the practice: refused, and only told that it exists.
    removed = gmf(gateway, "remove-member", practice["practice_id"], GP2)
    assert removed.returncode == 0, removed.stderr
    refused = second_gp_reads(gateway, written["id"])
    assert refused.status_code == 403
    assert refused.json()["issue"][0]["diagnostics"] == "hidden-by-patient"
    matched, told = second_gp_searches(gateway)
    assert written["id"] not in matched
    assert any(t.startswith("1 prescription ") and "hidden" in t for t in told), told

    # The same choice in Dutch and French.
    page.get_by_role("button", name="Nederlands").click()
    expect(
        page.get_by_label(
            "De voorschrijver die het opstelde en de huisartsen van mijn GMD-praktijk"
        )
    ).to_be_checked()
    page.get_by_role("button", name="Français").click()
    expect(
        page.get_by_label(
            "Le prescripteur qui l’a rédigée et les médecins généralistes de mon cabinet DMG"
        )
    ).to_be_checked()
    expect(
        page.get_by_text("mon prescripteur et les médecins généralistes de mon cabinet DMG")
    ).to_be_visible()
