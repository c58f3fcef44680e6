"""My mandates and acting for someone in the portal (RX-16, PO-4), over HTTP against the app: the
mandator gives a proxy mandate, the holder sees it among the mandates he holds, acts for the
mandator under a banner and sees his prescriptions, goes back to himself; once the mandator ends
it, acting for him is refused."""

from __future__ import annotations

import re

import httpx

from tests.consents.factories import OTHER_SSIN, prescription
from tests.dispenses.factories import fetch, state_of
from tests.fhir_profiles.factories import SSIN
from tests.fixtures.auth import PHARMACY_NIHDI
from tests.portal.conftest import OTHER_PASSWORD, Browser, csrf_of, log_in


def _ids(html: str, action: str) -> list[str]:
    return re.findall(rf'action="/portal/mandates/([^"/]+)/{action}"', html)


async def _give(mandator: httpx.AsyncClient, holder_ssin: str, actions: list[str]) -> str:
    page = await mandator.get("/portal/mandates")
    form = {"csrf": csrf_of(page.text), "holder_kind": "person", "holder_ssin": holder_ssin}
    given = await mandator.post(
        "/portal/mandates", data={**form, "action": actions, "start": "2020-01-01"}
    )
    assert given.status_code == 303
    [mandate_id] = _ids((await mandator.get("/portal/mandates")).text, "end")
    return mandate_id


async def test_RX_16_give_a_mandate_act_for_the_mandator_then_end_it(
    browser: Browser, prescriber: httpx.AsyncClient
) -> None:
    rx = await prescription(prescriber)
    mandator = await browser(**{"accept-language": "en"})
    await log_in(mandator)
    page = await mandator.get("/portal/mandates")
    assert page.status_code == 200, page.text
    assert "You have given no mandate." in page.text
    given = await mandator.post(
        "/portal/mandates",
        data={
            "csrf": csrf_of(page.text),
            "holder_kind": "person",
            "holder_ssin": OTHER_SSIN,
            "action": ["collect", "view"],
            "start": "2020-01-01",
            "end": "",
        },
    )
    assert given.status_code == 303
    page = await mandator.get("/portal/mandates")
    assert "The mandate has been given." in page.text
    assert OTHER_SSIN in page.text
    [mandate_id] = _ids(page.text, "end")

    holder = await browser(**{"accept-language": "en"})
    await log_in(holder, OTHER_SSIN, OTHER_PASSWORD)
    held = await holder.get("/portal/mandates")
    assert SSIN in held.text  # the mandator, among the mandates I hold
    acting = await holder.post(
        "/portal/acting-for", data={"csrf": csrf_of(held.text), "mandate": mandate_id}
    )
    assert acting.headers["location"] == "/portal/acting-for"
    listed = await holder.get("/portal/acting-for")
    assert listed.status_code == 200, listed.text
    assert f"You are acting for the person with national register number {SSIN}." in listed.text
    assert f'href="/portal/prescriptions/{rx["id"]}"' in listed.text
    # collect and view, not manage: the prescription's page offers no change (RX-16)
    shown = await holder.get(f"/portal/prescriptions/{rx['id']}")
    assert shown.status_code == 200, shown.text
    assert 'href="/portal/acting-for"' in shown.text
    for action in ("reserve", "delete", "visibility"):
        assert f'action="/portal/prescriptions/{rx["id"]}/{action}"' not in shown.text
    back = await holder.post("/portal/acting-for/stop", data={"csrf": csrf_of(listed.text)})
    assert back.status_code == 303
    assert "You are acting for" not in (await holder.get("/portal/mandates")).text
    held = await holder.get("/portal/mandates")
    await holder.post(
        "/portal/acting-for", data={"csrf": csrf_of(held.text), "mandate": mandate_id}
    )

    page = await mandator.get("/portal/mandates")
    ended = await mandator.post(
        f"/portal/mandates/{mandate_id}/end", data={"csrf": csrf_of(page.text)}
    )
    assert ended.status_code == 303
    assert "The mandate has ended." in (await mandator.get("/portal/mandates")).text

    # The holder was still acting for him: the API now refuses, and he is back to himself.
    stale = await holder.get("/portal/acting-for")
    assert stale.headers["location"] == "/portal/mandates"
    shown = (await holder.get("/portal/mandates")).text
    assert "This mandate is not active." in shown
    assert "You are acting for" not in shown
    held = await holder.get("/portal/mandates")
    refused = await holder.post(
        "/portal/acting-for", data={"csrf": csrf_of(held.text), "mandate": mandate_id}
    )
    assert refused.headers["location"] == "/portal/mandates"
    assert "You are acting for" not in (await holder.get("/portal/mandates")).text


async def test_a_mandate_to_oneself_is_refused_before_the_API_is_asked(browser: Browser) -> None:
    """The holder is another person (RX-16): the page says so and nothing is given."""
    mandator = await browser(**{"accept-language": "en"})
    await log_in(mandator)
    page = await mandator.get("/portal/mandates")
    wrong = await mandator.post(
        "/portal/mandates",
        data={
            "csrf": csrf_of(page.text),
            "holder_kind": "person",
            "holder_ssin": SSIN,  # himself
            "action": ["view"],
            "start": "2020-01-01",
        },
    )
    assert wrong.status_code == 303
    shown = await mandator.get("/portal/mandates")
    assert "Enter the national register number of the person." in shown.text
    assert "You have given no mandate." in shown.text


async def test_RX_16_a_holder_who_may_manage_reserves_for_the_mandator(
    browser: Browser, prescriber: httpx.AsyncClient, pharmacist: httpx.AsyncClient
) -> None:
    """Under a mandate naming manage the page offers the changes and the API takes the holder's
    reservation at a known pharmacy (the pharmacist fixture registers it)."""
    rx = await prescription(prescriber)
    mandator = await browser(**{"accept-language": "en"})
    await log_in(mandator)
    mandate_id = await _give(mandator, OTHER_SSIN, ["view", "manage"])
    holder = await browser(**{"accept-language": "en"})
    await log_in(holder, OTHER_SSIN, OTHER_PASSWORD)
    held = await holder.get("/portal/mandates")
    await holder.post(
        "/portal/acting-for", data={"csrf": csrf_of(held.text), "mandate": mandate_id}
    )
    shown = await holder.get(f"/portal/prescriptions/{rx['id']}")
    assert f'action="/portal/prescriptions/{rx["id"]}/visibility"' in shown.text
    done = await holder.post(
        f"/portal/prescriptions/{rx['id']}/reserve",
        data={"csrf": csrf_of(shown.text), "pharmacy": PHARMACY_NIHDI},
    )
    assert done.status_code == 303
    assert "The prescription is reserved." in (await holder.get(done.headers["location"])).text
    assert state_of(await fetch(prescriber, rx["id"])) == "in-process"


async def test_the_mandates_page_speaks_french_and_dutch(browser: Browser) -> None:
    for language, title, empty in (
        ("fr", "Mes mandats", "Vous n’avez donné aucun mandat."),
        ("nl", "Mijn volmachten", "U hebt geen volmacht gegeven."),
    ):
        client = await browser(**{"accept-language": language})
        await log_in(client)
        page = await client.get("/portal/mandates")
        assert title in page.text
        assert empty in page.text
