"""Portal sessions and tokens that end, and a login throttle that cannot be turned against the
patient (OWASP ASVS V2.2.1), over HTTP against the app, on both key-value back ends.

- Logout revokes the session's refresh token and every access token issued to the session: the
  FHIR API answers 401 ``invalid_token`` to them (RFC 6750 section 3.1); ``POST /oauth/revoke``
  does the same for any client (RFC 7009).
- A refresh with a malformed or broader ``scope`` is ``invalid_scope`` and the refresh token stays
  usable; a narrower one gives exactly that scope, and the next refresh the original one
  (RFC 6749 section 6).
- Wrong passwords slow down the address that sends them only: the same SSIN from another address
  logs in, and unknown SSINs are slowed down the same way (no oracle).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from gateway.auth import tokens
from gateway.auth.codes import new_verifier
from gateway.settings import Settings
from tests.fhir_profiles.factories import SSIN
from tests.fixtures.auth import REDIS_URL, flush_redis
from tests.portal.conftest import (
    OTHER_PASSWORD,
    OTHER_SSIN,
    PASSWORD,
    Browser,
    authorize_page,
    csrf_of,
    log_in,
    submit_login,
)
from tests.portal.test_login_flow import claims_of, code_for, exchange

ATTACKER = "203.0.113.7"
PATIENT_HOME = "198.51.100.20"
NO_ACCOUNT_SSIN = "75010100196"  # a valid check number (ID-2), and no account
BASE_DELAY = 60.0  # long enough that no test can outrun it: no timing in these tests


@pytest.fixture(params=["memory", "redis"] if REDIS_URL else ["memory"])
def redis_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "redis":
        assert REDIS_URL is not None
        flush_redis(REDIS_URL)
        yield REDIS_URL
    else:
        yield None


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"login_delay_base_seconds": BASE_DELAY})


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "accept": "application/fhir+json"}


async def fhir_status(client: httpx.AsyncClient, token: str, path: str = "/fhir/Consent") -> int:
    answer = await client.get(path, headers=bearer(token))
    if answer.status_code == 401:
        challenge = answer.headers["www-authenticate"]
        assert 'error="invalid_token"' in challenge, challenge
    return answer.status_code


async def refresh(
    client: httpx.AsyncClient, refresh_token: str, scope: str | None = None
) -> httpx.Response:
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": tokens.PORTAL_CLIENT_ID,
    }
    if scope is not None:
        form["scope"] = scope
    return await client.post("/oauth/token", data=form)


async def portal_tokens(app: FastAPI, client: httpx.AsyncClient) -> tuple[str, str]:
    """The access and refresh token the portal holds for this browser's session."""
    session = await app.state.portal_sessions.load(client.cookies.get("portal_session"))
    assert session is not None
    assert session.refresh_token is not None
    return session.access_token, session.refresh_token


async def logged_in_tokens(client: httpx.AsyncClient, **overrides: str) -> dict[str, str]:
    verifier = new_verifier()
    answer = await exchange(client, await code_for(client, verifier, **overrides), verifier)
    assert answer.status_code == 200, answer.text
    body: dict[str, str] = answer.json()
    return body


# -- logout and revocation ---------------------------------------------------------------------


async def test_sec_logout_revokes_the_sessions_access_and_refresh_tokens(
    browser: Browser, app: FastAPI
) -> None:
    client = await browser()
    await log_in(client)
    access, refresh_token = await portal_tokens(app, client)
    assert await fhir_status(client, access) == 200
    # Another access token of the same session (a refresh by someone holding the refresh token):
    # logout must end it too, although the portal never saw it.
    sibling = await refresh(client, refresh_token)
    assert sibling.status_code == 200, sibling.text
    other_access = sibling.json()["access_token"]
    assert claims_of(other_access)["sid"] == claims_of(access)["sid"]
    assert await fhir_status(client, other_access) == 200
    # The same patient signed in elsewhere: another session, untouched by this logout.
    elsewhere = await browser(address=PATIENT_HOME)
    await log_in(elsewhere)
    elsewhere_access, _ = await portal_tokens(app, elsewhere)

    page = await client.get("/portal/")
    out = await client.post("/portal/logout", data={"csrf": csrf_of(page.text)})
    assert out.status_code == 303

    assert await fhir_status(client, access) == 401
    assert await fhir_status(client, other_access) == 401
    replayed = await refresh(client, sibling.json()["refresh_token"])
    assert replayed.status_code == 400
    assert replayed.json()["error"] == "invalid_grant"
    assert await fhir_status(elsewhere, elsewhere_access) == 200


async def test_sec_revoke_endpoint_with_the_refresh_token_ends_the_session(
    browser: Browser,
) -> None:
    client = await browser()
    first = await logged_in_tokens(client)
    assert await fhir_status(client, first["access_token"]) == 200
    revoked = await client.post(
        "/oauth/revoke",
        data={
            "token": first["refresh_token"],
            "token_type_hint": "refresh_token",
            "client_id": tokens.PORTAL_CLIENT_ID,
        },
    )
    assert revoked.status_code == 200  # RFC 7009 section 2.2
    assert revoked.content == b""
    assert await fhir_status(client, first["access_token"]) == 401
    assert (await refresh(client, first["refresh_token"])).json()["error"] == "invalid_grant"


async def test_sec_revoke_endpoint_with_an_access_token_ends_its_refresh_token_too(
    browser: Browser,
) -> None:
    client = await browser()
    first = await logged_in_tokens(client)
    revoked = await client.post(
        "/oauth/revoke",
        # a wrong hint is only a hint (RFC 7009 section 2.1)
        data={
            "token": first["access_token"],
            "token_type_hint": "refresh_token",
            "client_id": tokens.PORTAL_CLIENT_ID,
        },
    )
    assert revoked.status_code == 200
    assert await fhir_status(client, first["access_token"]) == 401
    assert (await refresh(client, first["refresh_token"])).json()["error"] == "invalid_grant"


async def test_sec_revoke_endpoint_refuses_other_clients_and_ignores_unknown_tokens(
    browser: Browser,
) -> None:
    client = await browser()
    first = await logged_in_tokens(client)
    foreign = await client.post(
        "/oauth/revoke", data={"token": first["refresh_token"], "client_id": "demo-gp-1"}
    )
    assert foreign.status_code == 401
    assert foreign.json()["error"] == "invalid_client"
    anonymous = await client.post("/oauth/revoke", data={"token": first["refresh_token"]})
    assert anonymous.status_code == 400
    assert anonymous.json()["error"] == "invalid_request"
    no_token = await client.post("/oauth/revoke", data={"client_id": tokens.PORTAL_CLIENT_ID})
    assert no_token.json()["error"] == "invalid_request"
    for unknown in ("not-a-token", "a.b.c", "x" * 5000):
        answer = await client.post(
            "/oauth/revoke", data={"token": unknown, "client_id": tokens.PORTAL_CLIENT_ID}
        )
        assert answer.status_code == 200  # RFC 7009 section 2.2: no oracle, no error
    # None of the refused requests revoked anything.
    assert await fhir_status(client, first["access_token"]) == 200
    assert (await refresh(client, first["refresh_token"])).status_code == 200


async def test_sec_smart_configuration_names_the_revocation_endpoint(browser: Browser) -> None:
    client = await browser()
    smart = (await client.get("/.well-known/smart-configuration")).json()
    assert smart["revocation_endpoint"].endswith("/oauth/revoke")


# -- refresh and scope -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scope",
    [
        "patient/MedicationRequest.rs patient/Consent.rs",  # beyond this grant
        "patient/MedicationRequest.rus",  # more letters on the granted resource
        "patient/*.rs",  # every resource
        "system/MedicationRequest.rs",  # not a patient scope
        "patient/MedicationRequest.sr",  # malformed: SMART v2 letters out of order
        "patient/MedicationRequest",  # malformed: no permissions
        "   ",  # blank
    ],
)
async def test_sec_refresh_broader_scope_is_invalid_scope_and_keeps_token(
    browser: Browser, scope: str
) -> None:
    client = await browser()
    first = await logged_in_tokens(client, scope="patient/MedicationRequest.rs")
    assert first["scope"] == "patient/MedicationRequest.rs"
    refused = await refresh(client, first["refresh_token"], scope)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_scope"
    still = await refresh(client, first["refresh_token"])
    assert still.status_code == 200, still.text
    assert still.json()["scope"] == "patient/MedicationRequest.rs"


async def test_sec_refresh_narrower_scope_gives_exactly_that_and_keeps_the_original_grant(
    browser: Browser,
) -> None:
    client = await browser()
    first = await logged_in_tokens(client)
    original = first["scope"]
    assert "patient/Consent.crus" in original.split()
    narrowed = await refresh(client, first["refresh_token"], "patient/MedicationRequest.rs")
    assert narrowed.status_code == 200, narrowed.text
    body = narrowed.json()
    assert body["scope"] == "patient/MedicationRequest.rs"
    assert claims_of(body["access_token"])["scope"] == "patient/MedicationRequest.rs"
    assert await fhir_status(client, body["access_token"], "/fhir/Consent") == 403
    # The rotated refresh token still stands for the whole original grant.
    again = await refresh(client, body["refresh_token"])
    assert again.status_code == 200, again.text
    assert again.json()["scope"] == original
    assert await fhir_status(client, again.json()["access_token"], "/fhir/Consent") == 200


# -- login throttling --------------------------------------------------------------------------


async def fail(
    client: httpx.AsyncClient, page: httpx.Response, ssin: str, times: int
) -> httpx.Response:
    for _ in range(times):
        page = await submit_login(client, page, ssin, "wrong password")
        assert page.status_code == 401, page.text
    return page


async def test_sec_lockout_is_per_address_the_patient_still_logs_in_from_elsewhere(
    browser: Browser, app: FastAPI
) -> None:
    attacker = await browser(address=ATTACKER)
    _, page = await authorize_page(attacker)
    page = await fail(attacker, page, SSIN, app.state.settings.login_max_failures)
    delayed = await submit_login(attacker, page, SSIN, PASSWORD)  # even the right one waits
    assert delayed.status_code == 429
    assert delayed.headers["retry-after"] == str(int(BASE_DELAY))
    assert "Too many failed attempts" in delayed.text
    assert "location" not in delayed.headers

    patient = await browser(address=PATIENT_HOME)
    await log_in(patient)  # the patient is not locked out by someone who knows his SSIN
    # ... and the attacker's address is slowed down for that SSIN only.
    other = await submit_login(attacker, delayed, OTHER_SSIN, OTHER_PASSWORD)
    assert other.status_code == 303


async def test_sec_lockout_of_an_unknown_ssin_looks_the_same(
    browser: Browser, app: FastAPI
) -> None:
    assert not await app.state.auth.accounts.exists(NO_ACCOUNT_SSIN)
    answers = []
    for ssin in (SSIN, NO_ACCOUNT_SSIN):
        client = await browser(address=ATTACKER)
        _, page = await authorize_page(client)
        page = await fail(client, page, ssin, app.state.settings.login_max_failures)
        answers.append(await submit_login(client, page, ssin, "wrong password"))
    known, unknown = answers
    assert known.status_code == unknown.status_code == 429
    assert known.headers["retry-after"] == unknown.headers["retry-after"]
    assert "Too many failed attempts" in unknown.text


async def test_sec_lockout_delays_grow_and_are_capped(app: FastAPI) -> None:
    throttle = app.state.auth.throttle
    free = app.state.settings.login_max_failures
    delays = [await throttle.failed(SSIN, ATTACKER) for _ in range(free + 12)]
    assert delays[: free - 1] == [0.0] * (free - 1)
    growing = delays[free - 1 :]
    assert growing[:3] == [BASE_DELAY, 2 * BASE_DELAY, 4 * BASE_DELAY]
    assert growing[-1] == app.state.settings.login_delay_max_seconds
    assert growing == sorted(growing)
    assert await throttle.wait(SSIN, ATTACKER) > 0
    assert await throttle.wait(SSIN, PATIENT_HOME) == 0  # per address
    await throttle.succeeded(SSIN, ATTACKER)
    assert await throttle.wait(SSIN, ATTACKER) == 0
    assert await throttle.failed(SSIN, ATTACKER) == 0.0  # a success starts the count anew


async def test_sec_per_address_budget_still_limits_spraying_many_ssins(
    browser: Browser, app: FastAPI
) -> None:
    budget = app.state.settings.login_attempts_per_address
    app.state.settings.login_attempts_per_address = 3
    try:
        sprayer = await browser(address=ATTACKER)
        _, page = await authorize_page(sprayer)
        for ssin in (SSIN, OTHER_SSIN, NO_ACCOUNT_SSIN):
            page = await submit_login(sprayer, page, ssin, "password123")
            assert page.status_code == 401
        limited = await submit_login(sprayer, page, SSIN, PASSWORD)
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) > 0
        await log_in(await browser(address=PATIENT_HOME))
    finally:
        app.state.settings.login_attempts_per_address = budget
