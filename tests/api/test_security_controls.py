"""OWASP ASVS 4.0.3 level-2 controls that had no test of their own (docs/security.md).

Each test is named after the requirement it proves and drives the real app over HTTP: FHIR
answers are never cached and never sniffed, tokens are never cached and never taken from a URL,
a login starts a session id the browser did not choose, logs carry no password, token or SSIN,
and the FHIR API offers no method it does not implement.
"""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from structlog.testing import capture_logs

from tests.fhir_profiles.factories import SSIN, medication_request
from tests.fixtures.app import ClientFactory
from tests.fixtures.auth import Auth
from tests.fixtures.fhir import FHIR_JSON
from tests.portal.conftest import PASSWORD, Browser, authorize_page, csrf_of, log_in, submit_login

RX_URL = "/fhir/MedicationRequest"


async def _created(prescriber: httpx.AsyncClient) -> str:
    response = await prescriber.post(RX_URL, json=medication_request(), headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    logical_id: str = response.json()["id"]
    return logical_id


async def _fhir_answers(
    client_for: ClientFactory, prescriber: httpx.AsyncClient
) -> list[httpx.Response]:
    """A created resource, a read, a vread, a search, a 404, a 403 and a 401: every kind of answer."""
    created = await prescriber.post(RX_URL, json=medication_request(), headers=FHIR_JSON)
    logical_id = created.json()["id"]
    pharmacist = await client_for("pharmacist")
    anonymous = await client_for(None)
    return [
        created,
        await prescriber.get(f"{RX_URL}/{logical_id}"),
        await prescriber.get(f"{RX_URL}/{logical_id}/_history/1"),
        await prescriber.get(RX_URL, params={"patient:identifier": SSIN}),
        await prescriber.get(f"{RX_URL}/no-such-id"),
        await pharmacist.post(RX_URL, json=medication_request(), headers=FHIR_JSON),
        await anonymous.get(f"{RX_URL}/{logical_id}"),
    ]


async def test_asvs_v8_2_1_fhir_answers_are_never_cached(
    client_for: ClientFactory, prescriber: httpx.AsyncClient
) -> None:
    answers = await _fhir_answers(client_for, prescriber)
    assert [a.status_code for a in answers] == [201, 200, 200, 200, 404, 403, 401]
    for answer in answers:
        assert "no-store" in answer.headers.get("cache-control", ""), answer.request.url


async def test_asvs_v14_4_4_fhir_answers_are_never_sniffed(
    client_for: ClientFactory, prescriber: httpx.AsyncClient
) -> None:
    for answer in await _fhir_answers(client_for, prescriber):
        assert answer.headers.get("x-content-type-options") == "nosniff", answer.request.url


async def test_asvs_v8_1_1_token_answers_are_never_cached(auth: Auth) -> None:
    client = await auth.register("prescriber")
    granted = await auth.token_response(client)
    assert granted.status_code == 200
    refused = await auth.token_response("not-an-assertion")
    assert refused.status_code in (400, 401)
    for answer in (granted, refused):
        assert "no-store" in answer.headers.get("cache-control", "")


async def test_asvs_v3_1_1_a_token_in_the_url_opens_nothing(
    auth: Auth, client_for: ClientFactory, prescriber: httpx.AsyncClient
) -> None:
    logical_id = await _created(prescriber)
    token = await auth.token(await auth.register("prescriber"))
    anonymous = await client_for(None)
    # RFC 6750 section 2.3's query parameter is not supported: a token goes in the header only.
    response = await anonymous.get(f"{RX_URL}/{logical_id}", params={"access_token": token})
    assert response.status_code in (400, 401)
    assert "MedicationRequest" not in response.text.replace("OperationOutcome", "")
    search = await anonymous.get(RX_URL, params={"access_token": token, "patient:identifier": SSIN})
    assert search.status_code in (400, 401)


async def test_asvs_v3_2_1_login_starts_a_session_id_the_browser_did_not_choose(
    browser: Browser,
) -> None:
    planted = "attacker-chosen-session-id"
    client = await browser()
    await log_in(client)  # learns the cookie's domain and path
    [issued_before] = [c for c in client.cookies.jar if c.name == "portal_session"]
    home = await client.get("/portal/")
    await client.post("/portal/logout", data={"csrf": csrf_of(home.text)})
    # An attacker plants a session id of his choosing in the victim's browser, who then logs in.
    client.cookies.clear()
    client.cookies.set(
        "portal_session", planted, domain=issued_before.domain, path=issued_before.path
    )
    await log_in(client)
    [issued] = [c.value for c in client.cookies.jar if c.name == "portal_session"]
    assert issued
    assert issued not in (planted, issued_before.value)
    # The planted id is worth nothing: a browser holding only it is sent to log in.
    attacker = await browser()
    attacker.cookies.set(
        "portal_session", planted, domain=issued_before.domain, path=issued_before.path
    )
    page = await attacker.get("/portal/prescriptions")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/portal/")
    # The issued id is random, not the SSIN or a counter (ASVS V3.2.2: 128 bits or more).
    assert SSIN not in issued
    assert len(issued) >= 22


WRONG_PASSWORD = "a wrong password guess"


async def _authentication_traffic(
    auth: Auth, browser: Browser
) -> tuple[list[dict[str, object]], list[str]]:
    """A token granted, its assertion replayed, a wrong and a right portal password, a logout:
    the log events of it all, and the secrets that went over the wire."""
    client = await auth.register("prescriber")
    assertion = client.assertion()
    with capture_logs() as logs:
        granted = await auth.token_response(assertion)
        assert granted.status_code == 200
        replay = await auth.token_response(assertion)
        assert replay.status_code in (400, 401)
        patient = await browser()
        _, page = await authorize_page(patient)
        wrong = await submit_login(patient, page, SSIN, WRONG_PASSWORD)
        assert wrong.status_code != 303
        await log_in(patient)
        home = await patient.get("/portal/")
        assert home.status_code == 200
        session_id = patient.cookies.get("portal_session", path="/portal") or ""
        out = await patient.post("/portal/logout", data={"csrf": csrf_of(home.text)})
        assert out.status_code == 303
    secrets = [assertion, granted.json()["access_token"], PASSWORD, WRONG_PASSWORD, SSIN]
    return logs, [*secrets, *([session_id] if session_id else [])]


async def test_asvs_v7_1_1_logs_hold_no_password_token_or_ssin(
    auth: Auth, browser: Browser
) -> None:
    logs, secrets = await _authentication_traffic(auth, browser)
    assert logs, "the calls are logged"
    text = repr(logs)
    for secret in secrets:
        assert secret not in text


async def test_asvs_v7_2_1_every_authentication_decision_is_logged(
    auth: Auth, browser: Browser
) -> None:
    logs, _ = await _authentication_traffic(auth, browser)
    issued = [e for e in logs if e["event"] == "token_issued"]
    refused = [e for e in logs if e["event"] == "token_refused"]
    logins = [e.get("outcome") for e in logs if e["event"] == "patient_login"]
    assert issued
    assert issued[0]["client_id"]
    assert refused
    assert refused[0]["client_id"] == issued[0]["client_id"]
    assert refused[0]["error"]
    assert len(logins) == 2  # the wrong password, then the right one
    assert logins[0] != logins[1]


async def test_asvs_v4_3_2_the_portal_lists_no_directory_and_serves_no_source(
    browser: Browser,
) -> None:
    client = await browser()
    assert (await client.get("/portal/static/portal.css")).status_code == 200
    for path in (
        "/portal/static/",
        "/portal/static/flow.py",
        "/portal/static/..%2Fflow.py",
        "/portal/static/%2E%2E%2F%2E%2E%2Fsettings.py",
        "/portal/templates/",
    ):
        answer = await client.get(path)
        assert answer.status_code == 404, path
        assert "import" not in answer.text, path


async def test_asvs_v13_2_1_the_fhir_api_offers_only_what_it_implements(
    app: FastAPI, prescriber: httpx.AsyncClient
) -> None:
    logical_id = await _created(prescriber)
    for method in ("DELETE", "PATCH"):
        response = await prescriber.request(method, f"{RX_URL}/{logical_id}")
        assert response.status_code == 405, method
        assert response.json()["resourceType"] == "OperationOutcome"
    still_there = await prescriber.get(f"{RX_URL}/{logical_id}")
    assert still_there.status_code == 200
    assert still_there.json()["status"] == "active"
