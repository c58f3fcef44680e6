"""The portal's prescription steps over HTTP (issue 16, items 2, 3 and 6; RX-7 "verwijderen",
RX-15): reserving at a known pharmacy and cancelling, deleting after a confirmation step, and
what a patient cannot do (another patient's prescription, a pharmacy the gateway does not know, a
prescription no longer open, a form without its CSRF token). The browser journeys are in
tests/browser/test_prescription_steps.py."""

from __future__ import annotations

import httpx

from tests.consents.factories import OTHER_SSIN, prescription
from tests.dispenses.factories import fetch, operation, parameters, state_of
from tests.fixtures.app import ClientFactory
from tests.fixtures.auth import PHARMACY_NIHDI
from tests.fixtures.fhir import rid_of
from tests.portal.conftest import Browser, csrf_of, log_in

LIFECYCLE = "urn:ehealth-gateway:extension:lifecycle"


async def signed_in(browser: Browser) -> httpx.AsyncClient:
    client = await browser()
    await log_in(client)
    return client


def reserved_at(resource: dict[str, object]) -> str | None:
    """The pharmacy of a patient's reservation, from the lifecycle extension."""
    for extension in resource.get("extension", []):  # type: ignore[attr-defined]
        if extension["url"] == LIFECYCLE:
            parts = {p["url"]: p for p in extension["extension"]}
            if parts.get("reservation", {}).get("valueBoolean"):
                return str(parts["pharmacy"]["valueIdentifier"]["value"])
    return None


async def test_RX_15_reserve_at_a_known_pharmacy_then_cancel(
    browser: Browser, prescriber: httpx.AsyncClient, pharmacist: httpx.AsyncClient
) -> None:
    rx = await prescription(prescriber)
    me = await signed_in(browser)
    page = await me.get(f"/portal/prescriptions/{rx['id']}")
    assert "Reserve at a pharmacy" in page.text
    assert f'<option value="{PHARMACY_NIHDI}">' in page.text  # the registered pharmacy
    csrf = csrf_of(page.text)

    # A number the gateway does not know as a pharmacy is refused before the API is asked.
    unknown = await me.post(
        f"/portal/prescriptions/{rx['id']}/reserve", data={"csrf": csrf, "pharmacy": "06099999"}
    )
    assert unknown.status_code == 303
    shown = await me.get(unknown.headers["location"])
    assert "Choose the pharmacy where you want to collect it." in shown.text
    assert state_of(await fetch(prescriber, rx["id"])) == "open"

    done = await me.post(
        f"/portal/prescriptions/{rx['id']}/reserve",
        data={"csrf": csrf, "pharmacy": PHARMACY_NIHDI},
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"/portal/prescriptions/{rx['id']}"
    reserved = await me.get(done.headers["location"])
    assert "The prescription is reserved." in reserved.text
    assert "Reserved at:" in reserved.text
    assert "Cancel the reservation" in reserved.text
    assert "Delete…" not in reserved.text  # in process: not deletable
    assert reserved_at(await fetch(prescriber, rx["id"])) == PHARMACY_NIHDI
    listed = await pharmacist.get("/fhir/MedicationRequest", params={"reserved-at": PHARMACY_NIHDI})
    assert [e["resource"]["id"] for e in listed.json()["entry"]] == [rx["id"]]

    cancelled = await me.post(
        f"/portal/prescriptions/{rx['id']}/reservation/cancel", data={"csrf": csrf}
    )
    assert cancelled.status_code == 303
    assert (
        "The reservation has been cancelled."
        in (await me.get(f"/portal/prescriptions/{rx['id']}")).text
    )
    assert state_of(await fetch(prescriber, rx["id"])) == "open"


async def test_RX_15_a_pharmacys_own_taking_in_process_is_not_the_patients_to_cancel(
    browser: Browser, prescriber: httpx.AsyncClient, pharmacist: httpx.AsyncClient
) -> None:
    rx = await prescription(prescriber)
    path = f"MedicationRequest/{rx['id']}/$take-in-process"
    assert (await operation(pharmacist, path, parameters(rid=rid_of(rx)))).status_code == 200
    me = await signed_in(browser)
    page = await me.get(f"/portal/prescriptions/{rx['id']}")
    assert "In process at a pharmacy" in page.text
    for offered in ("Cancel the reservation", "Reserve at a pharmacy", "Delete…"):
        assert offered not in page.text
    # Posted anyway: the API refuses (409) and the page says so.
    refused = await me.post(
        f"/portal/prescriptions/{rx['id']}/reservation/cancel", data={"csrf": csrf_of(page.text)}
    )
    assert "This change was not accepted." in (await me.get(refused.headers["location"])).text
    assert state_of(await fetch(prescriber, rx["id"])) == "in-process"


async def test_RX_7_delete_after_a_confirmation_step(
    browser: Browser, prescriber: httpx.AsyncClient
) -> None:
    rx = await prescription(prescriber)
    me = await signed_in(browser)
    page = await me.get(f"/portal/prescriptions/{rx['id']}")
    assert f'action="/portal/prescriptions/{rx["id"]}/delete"' in page.text
    confirm = await me.get(f"/portal/prescriptions/{rx['id']}/delete")
    assert confirm.status_code == 200
    assert "Delete this prescription?" in confirm.text
    assert rid_of(rx) in confirm.text
    assert (await fetch(prescriber, rx["id"]))["status"] == "active"  # asking changes nothing

    without_token = await me.post(f"/portal/prescriptions/{rx['id']}/delete", data={})
    assert without_token.status_code == 403
    assert (await fetch(prescriber, rx["id"]))["status"] == "active"

    done = await me.post(
        f"/portal/prescriptions/{rx['id']}/delete", data={"csrf": csrf_of(confirm.text)}
    )
    assert done.status_code == 303
    shown = await me.get(done.headers["location"])
    assert "The prescription has been deleted." in shown.text
    assert "Deleted by me" in shown.text
    assert "Delete…" not in shown.text
    seen = await fetch(prescriber, rx["id"])
    assert seen["status"] == "cancelled"
    assert seen["statusReason"]["coding"][0]["code"] == "deleted-by-patient"
    assert "Deleted by me" in (await me.get("/portal/prescriptions")).text

    # The confirmation page of a prescription no longer open sends back with a message.
    again = await me.get(f"/portal/prescriptions/{rx['id']}/delete")
    assert again.status_code == 303
    assert (
        "Only an open prescription can be deleted."
        in (await me.get(again.headers["location"])).text
    )


async def test_PO_4_no_step_on_another_patients_prescription(
    browser: Browser, prescriber: httpx.AsyncClient, client_for: ClientFactory
) -> None:
    await client_for("pharmacist", nihdi=PHARMACY_NIHDI)  # a pharmacy the portal offers
    theirs = await prescription(prescriber, ssin=OTHER_SSIN)
    me = await signed_in(browser)
    csrf = csrf_of((await me.get("/portal/")).text)
    attempts = [
        ("GET", f"/portal/prescriptions/{theirs['id']}/delete", None),
        ("POST", f"/portal/prescriptions/{theirs['id']}/delete", {"csrf": csrf}),
        ("POST", f"/portal/prescriptions/{theirs['id']}/reserve",
         {"csrf": csrf, "pharmacy": PHARMACY_NIHDI}),
        ("POST", f"/portal/prescriptions/{theirs['id']}/reservation/cancel", {"csrf": csrf}),
    ]  # fmt: skip
    for method, path, form in attempts:
        response = await me.request(method, path, data=form)
        assert response.status_code == 403, (path, response.status_code)
        assert "You may not see this page." in response.text
    assert (await fetch(prescriber, theirs["id"]))["status"] == "active"
    assert state_of(await fetch(prescriber, theirs["id"])) == "open"
