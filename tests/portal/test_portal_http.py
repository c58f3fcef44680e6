"""The portal over HTTP: cookies' flags, security headers, CSRF, session timeouts, languages, and a
patient who types another patient's ids into URLs (PO-4)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.portal import i18n
from gateway.portal.barcode import modules
from tests.consents.factories import OTHER_SSIN, prescription
from tests.dispenses.factories import dispense_rid, operation, parameters, revoke
from tests.fhir_profiles.factories import SSIN
from tests.fixtures.auth import PHARMACY_NIHDI
from tests.fixtures.clock import Clock
from tests.fixtures.fhir import rid_of
from tests.portal.conftest import (
    OTHER_PASSWORD,
    Browser,
    authorize_page,
    csrf_of,
    log_in,
)

PAGES = (
    "/portal/",
    "/portal/prescriptions",
    "/portal/attestations",
    "/portal/consent",
    "/portal/relationships",
    "/portal/exclusions",
    "/portal/access-log",
)


async def signed_in(browser: Browser, ssin: str = SSIN, **headers: str) -> httpx.AsyncClient:
    client = await browser(**headers)
    if ssin == SSIN:
        await log_in(client)
    else:
        await log_in(client, ssin, OTHER_PASSWORD)
    return client


async def test_session_cookie_is_httponly_lax_and_not_secure_on_a_test_host(
    browser: Browser,
) -> None:
    client = await browser()
    _, page = await authorize_page(client)
    from tests.portal.conftest import submit_login

    answer = await submit_login(client, page, SSIN, "correct horse battery")
    done = await client.get(answer.headers["location"])
    cookie = done.headers["set-cookie"].lower()
    assert cookie.startswith("portal_session=")
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "secure" not in cookie  # plain http on a .test host (docs/portal.md)


async def test_session_cookie_is_secure_behind_an_https_public_url(
    app: FastAPI, browser: Browser
) -> None:
    app.state.settings = app.state.settings.model_copy(
        update={"public_base_url": "https://portal.example.be"}
    )
    client = await browser()
    client.base_url = httpx.URL("https://portal.example.be")
    start = await client.get("/portal/login")
    assert "secure" in start.headers["set-cookie"].lower()
    page = await client.get(start.headers["location"])
    from tests.portal.conftest import submit_login

    answer = await submit_login(client, page, SSIN, "correct horse battery")
    done = await client.get(answer.headers["location"])
    cookie = done.headers["set-cookie"]
    assert cookie.startswith("__Host-portal_session=")
    assert "Secure" in cookie
    assert "Path=/;" in cookie


async def test_every_portal_and_login_response_has_a_strict_csp(browser: Browser) -> None:
    client = await signed_in(browser)
    responses = [await client.get(path) for path in PAGES]
    responses.append(await client.get("/portal/nowhere"))
    anonymous = await browser()
    responses.append(await anonymous.get("/portal/"))
    responses.append((await authorize_page(anonymous))[1])
    responses.append(await anonymous.get("/portal/prescriptions"))  # a redirect
    for response in responses:
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp
        assert "script-src" not in csp  # nothing may run
        assert "frame-ancestors 'none'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
    assert responses[-4].status_code == 404
    for response in responses:
        assert "<script" not in response.text
        assert " style=" not in response.text


async def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    browser: Browser,
) -> None:
    client = await signed_in(browser)
    refused = await client.post("/portal/consent", data={"csrf": "forged"})
    assert refused.status_code == 403
    missing = await client.post("/portal/consent")
    assert missing.status_code == 403
    page = await client.get("/portal/consent")
    assert "Give my consent" in page.text  # still not given
    accepted = await client.post("/portal/consent", data={"csrf": csrf_of(page.text)})
    assert accepted.status_code == 303
    assert "Withdraw my consent" in (await client.get("/portal/consent")).text


async def test_logout_ends_the_session(browser: Browser) -> None:
    client = await signed_in(browser)
    cookie = client.cookies.get("portal_session")
    page = await client.get("/portal/")
    out = await client.post("/portal/logout", data={"csrf": csrf_of(page.text)})
    assert out.status_code == 303
    client.cookies.set("portal_session", cookie or "", domain="gateway.test", path="/portal")
    again = await client.get("/portal/prescriptions")  # the old cookie is worth nothing now
    assert again.status_code == 303
    assert again.headers["location"] == "/portal/?expired=1"


@pytest.mark.parametrize("kind", ["idle", "absolute"])
async def test_sessions_time_out(browser: Browser, app: FastAPI, clock: Clock, kind: str) -> None:
    client = await signed_in(browser)
    assert (await client.get("/portal/prescriptions")).status_code == 200
    settings = app.state.settings
    if kind == "absolute":
        # Stay active (a request every half idle period) until past the absolute end.
        step = settings.portal_idle_timeout_seconds / 2
        for _ in range(int(settings.portal_session_max_seconds / step)):
            clock.advance(seconds=step)
            response = await client.get("/portal/overview")
            assert response.status_code in (200, 303)
            if response.status_code == 303:
                break
        clock.advance(seconds=settings.portal_idle_timeout_seconds / 2)
    else:
        clock.advance(seconds=settings.portal_idle_timeout_seconds + 5)
    expired = await client.get("/portal/prescriptions")
    assert expired.status_code == 303
    assert expired.headers["location"] == "/portal/?expired=1"
    start = await client.get("/portal/?expired=1")
    assert "Your session has ended" in start.text


async def test_PO_4_patient_a_gets_403_on_patient_bs_ids(
    browser: Browser, prescriber: httpx.AsyncClient
) -> None:
    theirs = await prescription(prescriber, ssin=OTHER_SSIN)
    other = await signed_in(browser, OTHER_SSIN)
    page = await other.get("/portal/consent")
    await other.post("/portal/consent", data={"csrf": csrf_of(page.text)})
    their_consent = re.search(
        r"/portal/consent/([^/]+)/withdraw", (await other.get("/portal/consent")).text
    )
    assert their_consent is not None

    me = await signed_in(browser)
    csrf = csrf_of((await me.get("/portal/")).text)
    attempts: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", f"/portal/prescriptions/{theirs['id']}", None),
        ("GET", f"/portal/prescriptions/{theirs['id']}/barcode.svg", None),
        ("POST", f"/portal/prescriptions/{theirs['id']}/visibility",
         {"csrf": csrf, "pharmacies": "none", "prescribers": "open"}),
        ("POST", f"/portal/consent/{their_consent.group(1)}/withdraw", {"csrf": csrf}),
        ("POST", f"/portal/relationships/{their_consent.group(1)}/end", {"csrf": csrf}),
        ("POST", f"/portal/exclusions/{their_consent.group(1)}/remove", {"csrf": csrf}),
    ]  # fmt: skip
    for method, path, form in attempts:
        response = await me.request(method, path, data=form)
        assert response.status_code == 403, (path, response.status_code)
        assert "You may not see this page." in response.text
        assert theirs["identifier"][0]["value"] not in response.text
    # Their consent is untouched.
    assert "Withdraw my consent" in (await other.get("/portal/consent")).text
    # Malformed ids are a 404 page, not an error.
    assert (await me.get("/portal/prescriptions/..%2F..%2Fetc")).status_code == 404


async def test_languages_from_accept_language_and_the_switch(browser: Browser) -> None:
    dutch = await browser(**{"accept-language": "nl-BE,nl;q=0.9,en;q=0.5"})
    page = await dutch.get("/portal/")
    assert '<html lang="nl">' in page.text
    assert "Aanmelden" in page.text
    login = (await authorize_page(dutch))[1]
    assert "Rijksregisternummer" in login.text
    french = await signed_in(browser, **{"accept-language": "fr-BE"})
    overview = await french.get("/portal/")
    assert "Aperçu" in overview.text
    switched = await french.post(
        "/portal/language",
        data={"csrf": csrf_of(overview.text), "lang": "nl", "next": "/portal/consent"},
    )
    assert switched.status_code == 303
    assert switched.headers["location"] == "/portal/consent"
    assert "portal_lang=nl" in switched.headers["set-cookie"]
    assert "Mijn toestemming" in (await french.get("/portal/consent")).text
    bad = await french.post(
        "/portal/language", data={"csrf": csrf_of(overview.text), "lang": "de", "next": "//evil"}
    )
    assert bad.status_code == 400


def test_locale_formats_dates_and_euros() -> None:
    assert i18n.Formatter("fr").money(26.03) == "26,03\xa0€"
    assert i18n.Formatter("nl").money(26.03) == "€\xa026,03"
    assert i18n.Formatter("fr").date("2026-11-25") == "25 nov. 2026"
    assert i18n.Formatter("nl").date("2026-11-25") == "25 nov 2026"
    assert i18n.Formatter("en").datetime("2026-11-25T09:00:00Z").startswith("25 Nov 2026")
    assert i18n.Formatter("en").money("not a number") == ""
    assert i18n.negotiate("de-DE, fr;q=0.3, nl;q=0.8") == "nl"
    assert i18n.negotiate("q=;;,,") == "en"


def test_catalogs_are_complete_and_compiled() -> None:
    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po

    for locale in i18n.LOCALES:
        folder = i18n.LOCALE_DIR / locale / "LC_MESSAGES"
        with (folder / "messages.po").open("rb") as po, (folder / "messages.mo").open("rb") as mo:
            source, compiled = read_po(po), read_mo(mo)
        for message in source:
            if message.id:
                assert message.string, (locale, message.id)
                assert compiled.get(message.id) is not None, (
                    locale,
                    message.id,
                    "make translations",
                )


def test_the_barcode_is_code_128() -> None:
    pattern = modules("BEP123ABC456")
    assert pattern.startswith("11010010000")  # start code B
    assert pattern.endswith("1100011101011")  # stop pattern


async def test_RX_7_the_portal_shows_each_prescription_state(
    browser: Browser,
    prescriber: httpx.AsyncClient,
    pharmacist: httpx.AsyncClient,
    client_for: Any,
) -> None:
    patient = await client_for("patient", ssin=SSIN)
    reserved = await prescription(prescriber)
    reserve = parameters(pharmacy=PHARMACY_NIHDI)
    path = f"MedicationRequest/{reserved['id']}/$reserve"
    assert (await operation(patient, path, reserve)).status_code == 200
    dispensed = await prescription(prescriber)
    assert (await dispense_rid(pharmacist, rid_of(dispensed))).status_code == 201
    revoked = await prescription(prescriber)
    assert (await revoke(prescriber, revoked["id"])).status_code == 200
    await prescription(prescriber)  # open

    me = await signed_in(browser)
    listing = (await me.get("/portal/prescriptions")).text
    for label in ("In process at a pharmacy", "Dispensed", "Revoked", "Open"):
        assert label in listing, label
    one = await me.get(f"/portal/prescriptions/{reserved['id']}")
    assert "In process at a pharmacy" in one.text
