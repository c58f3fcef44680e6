"""Bearer tokens on ``/fhir`` (RFC 6750): 401 with a ``Bearer`` challenge and an OperationOutcome
for a missing, malformed, tampered, expired or unpublished token; 403 for a valid token that lacks
a scope or a role; the identity in the token drives the prescription rules."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import APIRouter, Depends, FastAPI
from joserfc import jwt
from joserfc.jwk import ECKey

from gateway.auth import tokens
from gateway.auth.identity import Principal
from gateway.auth.scopes import require_scopes
from tests.fhir_profiles.factories import medication_request
from tests.fixtures.auth import OTHER_PRESCRIBER_NIHDI, PRESCRIBER_NIHDI, Auth, TestClient
from tests.fixtures.fhir import FHIR_JSON

URL = "/fhir/MedicationRequest"


def assert_401(response: httpx.Response, *, error: str | None = "invalid_token") -> str:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="fhir"')
    if error:
        assert f'error="{error}"' in challenge
    else:
        assert "error=" not in challenge  # RFC 6750 3.1: no error code without credentials
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "login"
    diagnostics: str = outcome["issue"][0]["diagnostics"]
    return diagnostics


async def get_with(auth: Auth, token: str, path: str = URL) -> httpx.Response:
    async with auth.http(authorization=f"Bearer {token}", accept="application/fhir+json") as http:
        return await http.get(path, params={"status": "active"})


async def own_token(auth: Auth, claims: dict[str, Any], key: ECKey, kid: str) -> str:
    header = {"alg": "ES256", "kid": kid, "typ": "at+jwt"}
    return jwt.encode(header, claims, key, algorithms=["ES256"])


def valid_claims(client: TestClient, **overrides: Any) -> dict[str, Any]:
    issued = int(time.time())
    return {
        "iss": "http://gateway.test",
        "aud": "http://gateway.test/fhir",
        "sub": client.client_id,
        "client_id": client.client_id,
        "role": client.role,
        "nihdi": client.nihdi,
        "scope": "system/MedicationRequest.crus",
        "iat": issued,
        "exp": issued + 300,
        "jti": "j",
        **overrides,
    }


# -- 401 ---------------------------------------------------------------------------------------------


async def test_missing_token_is_401_with_a_bare_challenge(anonymous: httpx.AsyncClient) -> None:
    for method, path in (("GET", URL), ("POST", URL), ("GET", f"{URL}/abc")):
        assert_401(await anonymous.request(method, path), error=None)


async def test_metadata_needs_no_token(anonymous: httpx.AsyncClient) -> None:
    assert (await anonymous.get("/fhir/metadata")).status_code == 200


@pytest.mark.parametrize(
    "header",
    ["Basic dXNlcjpwYXNz", "Bearer", "Bearer not.a.token", "Token abc", "Bearer " + "a" * 5000],
)
async def test_malformed_authorization_is_401(auth: Auth, header: str) -> None:
    async with auth.http(authorization=header) as http:
        assert_401(await http.get(URL))


async def test_tampered_access_token_is_401(auth: Auth) -> None:
    client = await auth.register("prescriber")
    token = await auth.token(client)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["role"] = "admin"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert "signature" in assert_401(await get_with(auth, f"{header}.{forged_payload}.{signature}"))
    # and a flipped signature byte
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert_401(await get_with(auth, f"{header}.{payload}.{flipped}"))


async def test_expired_access_token_is_401(auth: Auth) -> None:
    client = await auth.register("prescriber")
    key = await auth.app.state.auth.keys.signing_key()
    issued = int(time.time()) - 1000
    token = await own_token(
        auth, valid_claims(client, iat=issued, exp=issued + 600), key.private, key.kid
    )
    assert "expired" in assert_401(await get_with(auth, token))


async def test_token_from_a_key_that_was_never_published_is_401(auth: Auth) -> None:
    client = await auth.register("prescriber")
    stranger = ECKey(*(2 * [ec.generate_private_key(ec.SECP256R1())]))
    token = await own_token(auth, valid_claims(client), stranger, stranger.thumbprint())
    assert "not published" in assert_401(await get_with(auth, token))


async def test_token_from_a_key_no_longer_published_is_401(auth: Auth) -> None:
    client = await auth.register("prescriber")
    old_token = await auth.token(client)
    keys: tokens.KeyStore = auth.app.state.auth.keys
    old_kid = (await keys.signing_key()).kid
    assert (await get_with(auth, old_token)).status_code == 200
    await keys.rotate(revoke_previous=True)  # the old key is withdrawn (compromise)
    async with auth.http() as http:
        published = [k["kid"] for k in (await http.get("/oauth/jwks")).json()["keys"]]
    assert old_kid not in published
    assert "not published" in assert_401(await get_with(auth, old_token))


async def test_key_retired_longer_than_a_token_lives_is_no_longer_published(auth: Auth) -> None:
    client = await auth.register("prescriber")
    keys: tokens.KeyStore = auth.app.state.auth.keys
    old = await keys.signing_key()
    await keys.rotate()
    # A token signed with the retired key is fine while the key is published...
    token = await own_token(auth, valid_claims(client), old.private, old.kid)
    assert (await get_with(auth, token)).status_code == 200
    # ...and refused once the key has been retired for longer than any token could live.
    from sqlalchemy import update

    from gateway.storage.tables import signing_keys

    long_ago = datetime.now(UTC) - keys.publish_window - timedelta(seconds=1)
    async with auth.app.state.sessions() as session:
        await session.execute(
            update(signing_keys).where(signing_keys.c.kid == old.kid).values(retired_at=long_ago)
        )
        await session.commit()
    keys.invalidate()  # what the cache time does on every instance
    assert "not published" in assert_401(await get_with(auth, token))


async def test_token_for_another_audience_or_issuer_is_401(auth: Auth) -> None:
    client = await auth.register("prescriber")
    key = await auth.app.state.auth.keys.signing_key()
    for overrides in ({"aud": "https://other.example/fhir"}, {"iss": "https://other.example"}):
        token = await own_token(auth, valid_claims(client, **overrides), key.private, key.kid)
        assert_401(await get_with(auth, token))


async def test_client_assertion_is_not_an_access_token(auth: Auth) -> None:
    client = await auth.register("prescriber")
    assert_401(await get_with(auth, client.assertion()))


async def test_revoked_clients_tokens_stop_working(auth: Auth) -> None:
    client = await auth.register("prescriber")
    token = await auth.token(client)
    assert (await get_with(auth, token)).status_code == 200
    state = auth.app.state.auth
    assert await state.registry.revoke(client.client_id)
    state.statuses.forget(client.client_id)  # what client_status_cache_seconds does, at most 5 s
    assert "no longer active" in assert_401(await get_with(auth, token))


# -- identity and 403 ---------------------------------------------------------------------------------


async def test_pharmacist_creating_a_prescription_is_403(pharmacist: httpx.AsyncClient) -> None:
    response = await pharmacist.post(URL, json=medication_request(), headers=FHIR_JSON)
    assert response.status_code == 403
    assert response.json()["issue"][0]["code"] == "forbidden"


async def test_prescriber_writing_in_another_prescribers_name_is_403(
    client_for: Any,
) -> None:
    prescriber = await client_for("prescriber", nihdi=PRESCRIBER_NIHDI)
    body = medication_request()
    body["requester"]["identifier"]["value"] = OTHER_PRESCRIBER_NIHDI
    response = await prescriber.post(URL, json=body, headers=FHIR_JSON)
    assert response.status_code == 403
    assert "not-author" in response.json()["issue"][0]["diagnostics"]


async def test_prescriber_writes_in_own_name(client_for: Any) -> None:
    prescriber = await client_for("prescriber", nihdi=OTHER_PRESCRIBER_NIHDI)
    body = medication_request()
    body["requester"]["identifier"]["value"] = OTHER_PRESCRIBER_NIHDI
    response = await prescriber.post(URL, json=body, headers=FHIR_JSON)
    assert response.status_code == 201, response.text


# Routes guarded by ``require_scopes``, as prescription and claim routes will be.
FundWrite = Annotated[Principal, Depends(require_scopes("system/ClaimResponse.c", roles={"fund"}))]
PrescriptionRead = Annotated[Principal, Depends(require_scopes("system/MedicationRequest.read"))]
probe = APIRouter()


@probe.post("/fhir/Probe/fund")
async def fund_only(caller: FundWrite) -> dict[str, Any]:
    return {"client_id": caller.client_id, "role": caller.role}


@probe.get("/fhir/Probe/read")
async def reader(caller: PrescriptionRead) -> dict[str, Any]:
    return {"client_id": caller.client_id, "role": caller.role, "nihdi": caller.nihdi}


def mount_probe(app: FastAPI) -> None:
    app.include_router(probe)


@pytest.mark.parametrize("role", ["prescriber", "pharmacist", "admin"])
async def test_every_reading_role_passes_a_read_scope(auth: Auth, role: str) -> None:
    mount_probe(auth.app)
    client = await auth.register(role)
    async with auth.http(authorization=f"Bearer {await auth.token(client)}") as http:
        response = await http.get("/fhir/Probe/read")
    assert response.status_code == 200, response.text
    assert response.json() == {"client_id": client.client_id, "role": role, "nihdi": client.nihdi}


async def test_fund_passes_its_own_route(auth: Auth) -> None:
    mount_probe(auth.app)
    fund = await auth.register("fund")
    async with auth.http(authorization=f"Bearer {await auth.token(fund)}") as http:
        assert (await http.post("/fhir/Probe/fund")).status_code == 200


async def test_missing_scope_is_403_insufficient_scope(auth: Auth) -> None:
    mount_probe(auth.app)
    prescriber = await auth.register("prescriber")
    narrow = await auth.token(prescriber, "system/Patient.r")
    async with auth.http(authorization=f"Bearer {narrow}") as http:
        response = await http.get("/fhir/Probe/read")
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert 'scope="system/MedicationRequest.rs"' in response.headers["www-authenticate"]
    assert response.json()["issue"][0]["code"] == "forbidden"


async def test_wrong_role_is_403(auth: Auth) -> None:
    mount_probe(auth.app)
    admin = await auth.register("admin")  # reads everything, but is not a fund
    async with auth.http(authorization=f"Bearer {await auth.token(admin)}") as http:
        response = await http.post("/fhir/Probe/fund")
    assert response.status_code == 403
    assert "wrong-role" in response.json()["issue"][0]["diagnostics"]


async def test_access_token_never_outlives_the_certificate(auth: Auth) -> None:
    client = await auth.register("prescriber", not_after=datetime.now(UTC) + timedelta(seconds=120))
    response = await auth.token_response(client)
    assert response.status_code == 200
    assert response.json()["expires_in"] <= 120
