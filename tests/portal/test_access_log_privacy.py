"""The portal's "who accessed my data" page shows only the patient (SEC-6, PO-4): another patient's
probes of his data are not in it, and no page names another person's SSIN."""

from __future__ import annotations

import httpx

from tests.consents.factories import OTHER_SSIN, prescription
from tests.fhir_profiles.factories import SSIN
from tests.portal.conftest import OTHER_PASSWORD, Browser, log_in


async def signed_in(browser: Browser, ssin: str, password: str | None = None) -> httpx.AsyncClient:
    client = await browser()
    if password is None:
        await log_in(client, ssin)
    else:
        await log_in(client, ssin, password)
    return client


async def test_sec_patient_log_shows_only_the_patient_on_the_portal_page(
    browser: Browser, prescriber: httpx.AsyncClient
) -> None:
    mine = await prescription(prescriber, ssin=SSIN)
    prober = await signed_in(browser, OTHER_SSIN, OTHER_PASSWORD)
    probe = await prober.get(f"/portal/prescriptions/{mine['id']}")
    assert probe.status_code == 403

    me = await signed_in(browser, SSIN)
    for path in ("/portal/access-log?mine=1", "/portal/access-log", "/portal/overview"):
        page = await me.get(path)
        assert page.status_code == 200, path
        assert OTHER_SSIN not in page.text
    assert "not-own-data" not in (await me.get("/portal/access-log?mine=1")).text

    theirs = await prober.get("/portal/access-log?mine=1")
    assert theirs.status_code == 200
    assert "not-own-data" in theirs.text  # his own refused attempt, without whose data it was
    assert SSIN not in theirs.text
