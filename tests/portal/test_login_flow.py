"""The portal's login: authorization code + PKCE (RFC 6749 section 4.1, RFC 7636) on the gateway's
own login page, over HTTP against the app. Edge cases: PKCE missing or wrong, a code used twice,
a wrong redirect URI, a wrong password, the refresh token (throttling and the end of sessions:
test_sessions_end.py)."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from gateway.auth import tokens
from gateway.auth.codes import new_verifier, s256
from tests.fhir_profiles.factories import SSIN
from tests.fixtures.auth import BASE_URL
from tests.portal.conftest import PASSWORD, Browser, authorize_page, hidden_fields, submit_login

CALLBACK = f"{BASE_URL}/portal/callback"


def authorize_url(verifier: str | None, **overrides: str | None) -> str:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": tokens.PORTAL_CLIENT_ID,
        "redirect_uri": CALLBACK,
        "state": "xyz",
        "code_challenge": s256(verifier) if verifier else None,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return "/oauth/authorize?" + urlencode({k: v for k, v in params.items() if v is not None})


async def code_for(client: httpx.AsyncClient, verifier: str, **overrides: str | None) -> str:
    page = await client.get(authorize_url(verifier, **overrides))
    assert page.status_code == 200, page.text
    answer = await submit_login(client, page, SSIN, PASSWORD)
    assert answer.status_code == 303, answer.text
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["state"] == ["xyz"]
    return query["code"][0]


async def exchange(
    client: httpx.AsyncClient, code: str, verifier: str | None, **overrides: str
) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "client_id": tokens.PORTAL_CLIENT_ID,
        **overrides,
    }
    if verifier is not None:
        form["code_verifier"] = verifier
    return await client.post("/oauth/token", data=form)


def claims_of(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    decoded: dict[str, object] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


async def test_the_code_gives_a_patient_token_with_patient_scopes_only(browser: Browser) -> None:
    client = await browser()
    verifier = new_verifier()
    token = await exchange(client, await code_for(client, verifier), verifier)
    assert token.status_code == 200, token.text
    assert token.headers["cache-control"] == "no-store"
    body = token.json()
    claims = claims_of(body["access_token"])
    assert claims["role"] == "patient"
    assert claims["ssin"] == SSIN
    assert claims["client_id"] == tokens.PORTAL_CLIENT_ID
    assert all(s.startswith("patient/") for s in str(claims["scope"]).split())
    assert "nihdi" not in claims
    mine = await client.get(
        "/fhir/MedicationRequest", headers={"authorization": f"Bearer {body['access_token']}"}
    )
    assert mine.status_code == 200


async def test_PKCE_a_request_without_a_challenge_is_sent_back_with_invalid_request(
    browser: Browser,
) -> None:
    client = await browser()
    answer = await client.get(authorize_url(None))
    assert answer.status_code == 303
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["error"] == ["invalid_request"]
    assert query["state"] == ["xyz"]
    plain = await client.get(authorize_url(new_verifier(), code_challenge_method="plain"))
    assert parse_qs(urlsplit(plain.headers["location"]).query)["error"] == ["invalid_request"]


async def test_PKCE_a_missing_or_wrong_verifier_is_refused(browser: Browser) -> None:
    client = await browser()
    verifier = new_verifier()
    missing = await exchange(client, await code_for(client, verifier), None)
    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_request"
    wrong = await exchange(client, await code_for(client, verifier), new_verifier())
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"


async def test_a_code_is_used_once(browser: Browser) -> None:
    client = await browser()
    verifier = new_verifier()
    code = await code_for(client, verifier)
    assert (await exchange(client, code, verifier)).status_code == 200
    again = await exchange(client, code, verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


async def test_a_wrong_redirect_uri_is_never_redirected_to_and_never_redeems(
    browser: Browser,
) -> None:
    client = await browser()
    foreign = await client.get(
        authorize_url(new_verifier(), redirect_uri="https://evil.example/cb")
    )
    assert foreign.status_code == 400  # RFC 6749 4.1.2.1: an error page, no redirect
    assert "location" not in foreign.headers
    unknown = await client.get(authorize_url(new_verifier(), client_id="someone-else"))
    assert unknown.status_code == 400
    verifier = new_verifier()
    code = await code_for(client, verifier)
    other = await exchange(client, code, verifier, redirect_uri=f"{BASE_URL}/portal/other")
    assert other.json()["error"] == "invalid_grant"
    assert (await exchange(client, code, verifier)).status_code == 400  # spent by the try


async def test_only_the_portal_may_redeem_a_code(browser: Browser) -> None:
    client = await browser()
    verifier = new_verifier()
    answer = await exchange(client, await code_for(client, verifier), verifier, client_id="demo")
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"


async def test_a_bad_password_gives_no_code(browser: Browser) -> None:
    client = await browser()
    _, page = await authorize_page(client)
    answer = await submit_login(client, page, SSIN, "wrong password")
    assert answer.status_code == 401
    assert "location" not in answer.headers
    assert "not correct" in answer.text
    # Each answer is a new form with a new CSRF token.
    unknown = await submit_login(client, answer, "90010100123", "whatever it is")
    assert unknown.status_code == 401  # an SSIN without account: the same answer
    malformed = await submit_login(client, unknown, "12345", "whatever it is")
    assert malformed.status_code == 401


async def test_login_form_without_its_csrf_cookie_is_refused(browser: Browser) -> None:
    client = await browser()
    _, page = await authorize_page(client)
    fields = hidden_fields(page.text)
    fields.update({"ssin": SSIN, "password": PASSWORD})
    client.cookies.clear()
    answer = await client.post("/oauth/authorize", data=fields)
    assert answer.status_code == 403
    assert "location" not in answer.headers


async def test_the_refresh_token_rotates(browser: Browser) -> None:
    client = await browser()
    verifier = new_verifier()
    first = (await exchange(client, await code_for(client, verifier), verifier)).json()
    form = {
        "grant_type": "refresh_token",
        "refresh_token": first["refresh_token"],
        "client_id": tokens.PORTAL_CLIENT_ID,
    }
    second = await client.post("/oauth/token", data=form)
    assert second.status_code == 200, second.text
    assert claims_of(second.json()["access_token"])["ssin"] == SSIN
    reused = await client.post("/oauth/token", data=form)
    assert reused.json()["error"] == "invalid_grant"


async def test_the_smart_configuration_names_the_authorize_endpoint(browser: Browser) -> None:
    client = await browser()
    smart = (await client.get("/.well-known/smart-configuration")).json()
    assert smart["authorization_endpoint"] == f"{BASE_URL}/oauth/authorize"
    assert smart["code_challenge_methods_supported"] == ["S256"]
    assert "authorization_code" in smart["grant_types_supported"]
