"""``POST /oauth/token`` over HTTP: the positive path for every role, and each refusal
(RFC 6749 section 5.2 errors; RFC 7523 section 3 assertion rules)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from joserfc import jwt
from joserfc.jwk import KeySet

from gateway.auth import devpki, pki, scopes
from gateway.auth.assertion import sign_assertion, signing_key_of
from tests.fixtures.auth import TOKEN_URL, Auth, DevPki, TestClient, now, token_form


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_jws(header: dict[str, Any], claims: dict[str, Any], sign: Any = None) -> str:
    """A compact JWS built by hand, for algorithms no library will sign with."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = sign(signing_input.encode()) if sign else b""
    return f"{signing_input}.{b64url(signature)}"


def assertion_claims(client: TestClient, **overrides: Any) -> dict[str, Any]:
    issued = int(time.time())
    return {
        "iss": client.client_id,
        "sub": client.client_id,
        "aud": TOKEN_URL,
        "iat": issued,
        "exp": issued + 60,
        "jti": f"jti-{time.time_ns()}",
        **overrides,
    }


async def decode_access_token(auth: Auth, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    async with auth.http() as http:
        jwks = (await http.get("/oauth/jwks")).json()
    decoded = jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["ES256"])
    return decoded.header, decoded.claims


def refused(response: httpx.Response, error: str = "invalid_client", status: int = 400) -> str:
    assert response.status_code == status, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["error"] == error, body
    description: str = body.get("error_description", "")
    return description


# -- positive paths -------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["prescriber", "pharmacist", "fund", "admin"])
async def test_every_role_gets_a_token_with_its_ceiling(auth: Auth, role: str) -> None:
    client = await auth.register(role)
    response = await auth.token_response(client)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert 0 < body["expires_in"] <= 900
    assert body["scope"].split() == sorted(scopes.ROLE_CEILINGS[role])
    header, claims = await decode_access_token(auth, body["access_token"])
    assert header["alg"] == "ES256"
    assert header["typ"] == "at+jwt"
    assert header["kid"]
    assert claims["client_id"] == claims["sub"] == client.client_id
    assert claims["role"] == role
    assert claims.get("nihdi") == client.nihdi
    assert claims["scope"] == body["scope"]
    assert claims["iss"] == "http://gateway.test"
    assert claims["aud"] == "http://gateway.test/fhir"
    assert claims["exp"] - claims["iat"] == body["expires_in"]
    assert claims["jti"]


async def test_a_narrower_scope_is_granted_as_asked(auth: Auth) -> None:
    client = await auth.register("prescriber")
    response = await auth.token_response(
        client, "system/MedicationRequest.c system/MedicationRequest.rs system/Patient.r"
    )
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "system/MedicationRequest.crs system/Patient.r"


async def test_smart_v1_scopes_are_read_as_v2(auth: Auth) -> None:
    client = await auth.register("pharmacist")
    response = await auth.token_response(client, "system/MedicationRequest.read")
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "system/MedicationRequest.rs"


@pytest.mark.parametrize("alg", ["RS256", "PS256"])
async def test_rsa_certificates_sign_with_rs256_or_ps256(auth: Auth, alg: str) -> None:
    client = await auth.register("pharmacist", key_type="rsa")
    response = await auth.token_response(client.assertion(alg=alg))
    assert response.status_code == 200, response.text


async def test_without_x5c_the_registered_certificate_verifies(auth: Auth) -> None:
    client = await auth.register("prescriber")
    response = await auth.token_response(client.assertion(x5c=False))
    assert response.status_code == 200, response.text


async def test_x5c_header_beyond_joserfcs_512_byte_default_is_accepted(auth: Auth) -> None:
    client = await auth.register("prescriber")
    assertion = client.assertion()
    assert len(assertion.split(".")[0]) > 512  # leaf + issuing CA
    assert (await auth.token_response(assertion)).status_code == 200


async def test_aud_may_be_a_list_holding_the_token_endpoint(auth: Auth) -> None:
    client = await auth.register("prescriber")
    assertion = client.assertion(claims={"aud": ["https://elsewhere.example", TOKEN_URL]})
    assert (await auth.token_response(assertion)).status_code == 200


async def test_a_renewed_certificate_with_the_same_key_is_accepted(
    auth: Auth, dev_pki: DevPki
) -> None:
    client = await auth.register("prescriber")
    renewed, _ = devpki.issue_client_certificate(
        dev_pki.issuer, common_name="Renewed", nihdi=client.nihdi, key=client.key
    )
    assertion = sign_assertion(
        client.key,
        client_id=client.client_id,
        token_url=TOKEN_URL,
        certificates=[renewed, dev_pki.issuer.cert],
    )
    assert (await auth.token_response(assertion)).status_code == 200


# -- refusals named by the issue ------------------------------------------------------------------


async def test_forged_signature_is_refused(auth: Auth) -> None:
    client = await auth.register("prescriber")
    impostor = ec.generate_private_key(ec.SECP256R1())
    assertion = sign_assertion(
        impostor,
        client_id=client.client_id,
        token_url=TOKEN_URL,
        certificates=[client.cert, *client.chain],  # the victim's certificate, another key
    )
    assert "signature" in refused(await auth.token_response(assertion))


async def test_tampered_assertion_claims_are_refused(auth: Auth) -> None:
    client = await auth.register("prescriber")
    header, payload, signature = client.assertion().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["exp"] += 10
    tampered = f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"
    assert "signature" in refused(await auth.token_response(tampered))


@pytest.mark.parametrize("x5c", [True, False])
async def test_certificate_from_another_ca_is_refused(
    auth: Auth, foreign_pki: DevPki, x5c: bool
) -> None:
    # Registered while that CA was trusted (or planted in the registry): the gateway's trust
    # store decides at every token request.
    cert, key = devpki.issue_client_certificate(
        foreign_pki.issuer, common_name="Dr Elsewhere", nihdi="19234011004"
    )
    await auth.app.state.auth.registry.register(
        role="prescriber",
        cert_pem=pki.pem(cert),
        trust=foreign_pki.trust,
        nihdi="19234011004",
        client_id="foreign-gp",
    )
    client = TestClient(
        "foreign-gp", "prescriber", "19234011004", cert, key, [foreign_pki.issuer.cert]
    )
    description = refused(await auth.token_response(client.assertion(x5c=x5c)))
    assert "trusted CA" in description


async def test_same_key_certified_by_another_ca_is_refused(auth: Auth, foreign_pki: DevPki) -> None:
    client = await auth.register("prescriber")
    foreign, _ = devpki.issue_client_certificate(
        foreign_pki.issuer, common_name="Dr Claes", nihdi=client.nihdi, key=client.key
    )
    assertion = sign_assertion(
        client.key,
        client_id=client.client_id,
        token_url=TOKEN_URL,
        certificates=[foreign, foreign_pki.issuer.cert],
    )
    assert "trusted CA" in refused(await auth.token_response(assertion))


async def test_a_certificate_not_registered_for_the_client_is_refused(auth: Auth) -> None:
    client = await auth.register("prescriber")
    other = await auth.register("prescriber")
    assertion = sign_assertion(
        other.key,
        client_id=client.client_id,
        token_url=TOKEN_URL,
        certificates=[other.cert, *other.chain],
    )
    assert "registered" in refused(await auth.token_response(assertion))


@pytest.mark.parametrize("x5c", [True, False])
async def test_expired_certificate_is_refused(auth: Auth, x5c: bool) -> None:
    client = await auth.register(
        "prescriber",
        not_before=now() - timedelta(days=200),
        not_after=now() - timedelta(days=1),
        registered_at=now() - timedelta(days=2),  # valid when it was registered
    )
    assert "expired" in refused(await auth.token_response(client.assertion(x5c=x5c)))


async def test_revoked_client_is_refused_at_once(auth: Auth) -> None:
    client = await auth.register("pharmacist")
    assert (await auth.token_response(client)).status_code == 200
    assert await auth.app.state.auth.registry.revoke(client.client_id, "left the practice")
    assert "revoked" in refused(await auth.token_response(client))


async def test_replayed_jti_is_refused(auth: Auth) -> None:
    client = await auth.register("prescriber")
    assertion = client.assertion()
    assert (await auth.token_response(assertion)).status_code == 200
    assert "already been used" in refused(await auth.token_response(assertion))


async def test_same_jti_in_a_new_assertion_is_refused(auth: Auth) -> None:
    client = await auth.register("prescriber")
    first = client.assertion(claims={"jti": "fixed-jti"})
    assert (await auth.token_response(first)).status_code == 200
    again = client.assertion(claims={"jti": "fixed-jti", "iat": int(time.time()) + 1})
    assert "already been used" in refused(await auth.token_response(again))


async def test_assertion_expiring_too_far_ahead_is_refused(auth: Auth) -> None:
    client = await auth.register("prescriber")
    assert "seconds ahead" in refused(await auth.token_response(client.assertion(lifetime=3600)))
    assert (await auth.token_response(client.assertion(lifetime=300))).status_code == 200


async def test_already_expired_assertion_is_refused(auth: Auth) -> None:
    client = await auth.register("prescriber")
    issued = int(time.time()) - 400
    assertion = client.assertion(claims={"iat": issued, "exp": issued + 300})
    assert "expired" in refused(await auth.token_response(assertion))


async def test_assertion_without_exp_or_jti_is_refused(auth: Auth) -> None:
    client = await auth.register("prescriber")
    for missing in ("exp", "jti"):
        claims = assertion_claims(client)
        del claims[missing]
        assertion = jwt.encode(
            {"alg": "ES256"}, claims, signing_key_of(client.key), algorithms=["ES256"]
        )
        assert missing in refused(await auth.token_response(assertion))


async def test_wrong_aud_is_refused(auth: Auth) -> None:
    client = await auth.register("prescriber")
    for aud in ("http://gateway.test/fhir", "https://other.example/oauth/token"):
        assertion = client.assertion(token_url=aud)
        assert "aud" in refused(await auth.token_response(assertion))


async def test_iss_other_than_sub_is_refused(auth: Auth) -> None:
    client = await auth.register("prescriber")
    assertion = client.assertion(claims={"iss": "someone-else"})
    assert "iss" in refused(await auth.token_response(assertion))


async def test_alg_none_is_refused(auth: Auth) -> None:
    client = await auth.register("prescriber")
    header = {"alg": "none", "x5c": pki.to_x5c([client.cert])}
    assertion = raw_jws(header, assertion_claims(client))
    assert "RS256, PS256 or ES256" in refused(await auth.token_response(assertion))


async def test_hmac_with_the_public_key_as_secret_is_refused(auth: Auth) -> None:
    client = await auth.register("prescriber", key_type="rsa")
    for secret in (
        pki.pem(client.cert).encode(),
        client.cert.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
    ):
        header = {"alg": "HS256", "x5c": pki.to_x5c([client.cert])}
        assertion = raw_jws(
            header,
            assertion_claims(client),
            lambda data, key=secret: hmac.new(key, data, hashlib.sha256).digest(),
        )
        assert "RS256, PS256 or ES256" in refused(await auth.token_response(assertion))


async def test_es256_claimed_over_an_rsa_certificate_is_refused(auth: Auth) -> None:
    client = await auth.register("prescriber", key_type="rsa")
    impostor = ec.generate_private_key(ec.SECP256R1())
    assertion = sign_assertion(
        impostor, client_id=client.client_id, token_url=TOKEN_URL, certificates=[client.cert]
    )
    refused(await auth.token_response(assertion))


# -- other RFC 6749 errors ---------------------------------------------------------------------------


async def test_unknown_client_is_refused(auth: Auth) -> None:
    client = await auth.register("prescriber")
    client.client_id = "nobody"
    assert "unknown client" in refused(await auth.token_response(client))


async def test_no_client_authentication_is_refused(auth: Auth) -> None:
    async with auth.http() as http:
        response = await http.post("/oauth/token", data={"grant_type": "client_credentials"})
    refused(response)


async def test_http_basic_authentication_is_401(auth: Auth) -> None:
    async with auth.http() as http:
        response = await http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=("some-client", "some-secret"),
        )
    refused(response, status=401)
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_scope_beyond_the_role_ceiling_is_invalid_scope(auth: Auth) -> None:
    pharmacist = await auth.register("pharmacist")
    for scope in (
        "system/MedicationRequest.c",  # a pharmacist does not prescribe
        "system/*.rs",
        "patient/MedicationRequest.rs",
        "system/MedicationRequest.sr",  # letters out of order
        "openid",
    ):
        refused(await auth.token_response(pharmacist, scope), "invalid_scope")


async def test_unsupported_grant_type(auth: Auth) -> None:
    client = await auth.register("prescriber")
    form = token_form(client.assertion())
    form["grant_type"] = "password"
    async with auth.http() as http:
        response = await http.post("/oauth/token", data=form)
    refused(response, "unsupported_grant_type")


async def test_repeated_parameters_are_invalid_request(auth: Auth) -> None:
    client = await auth.register("prescriber")
    body = httpx.QueryParams(token_form(client.assertion())).add("scope", "a").add("scope", "b")
    async with auth.http() as http:
        response = await http.post(
            "/oauth/token",
            content=str(body),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    refused(response, "invalid_request")


async def test_json_body_is_invalid_request(auth: Auth) -> None:
    client = await auth.register("prescriber")
    async with auth.http() as http:
        response = await http.post("/oauth/token", json=token_form(client.assertion()))
    refused(response, "invalid_request")


async def test_client_id_parameter_must_match_the_assertion(auth: Auth) -> None:
    client = await auth.register("prescriber")
    response = await auth.token_response(client, client_id="another-client")
    assert "client_id" in refused(response)


async def test_header_beyond_8_kib_is_refused(auth: Auth) -> None:
    client = await auth.register("prescriber")
    assertion = client.assertion(header={"kid": "x" * 9000})
    async with auth.http() as http:
        response = await http.post("/oauth/token", data=token_form(assertion))
    assert response.status_code == 400
    assert response.json()["error"] in ("invalid_client", "invalid_request")


async def test_garbage_assertion_is_refused(auth: Auth) -> None:
    for garbage in ("not-a-jwt", "a.b.c", "\u00e9t\u00e9.x.y"):
        refused(await auth.token_response(garbage))


async def test_metadata_endpoints(auth: Auth) -> None:
    async with auth.http() as http:
        smart = (await http.get("/.well-known/smart-configuration")).json()
        jwks = (await http.get("/oauth/jwks")).json()
    assert smart["token_endpoint"] == TOKEN_URL
    # "none": the portal, a public client with PKCE (docs/portal.md)
    assert smart["token_endpoint_auth_methods_supported"] == ["private_key_jwt", "none"]
    assert set(smart["token_endpoint_auth_signing_alg_values_supported"]) == {
        "RS256",
        "PS256",
        "ES256",
    }
    assert smart["grant_types_supported"] == [
        "client_credentials",
        "authorization_code",
        "refresh_token",
    ]
    assert smart["authorization_endpoint"] == "http://gateway.test/oauth/authorize"
    assert smart["code_challenge_methods_supported"] == ["S256"]
    assert smart["jwks_uri"] == "http://gateway.test/oauth/jwks"
    assert "client-confidential-asymmetric" in smart["capabilities"]
    assert smart["ehealth_gateway"]["role_scope_ceilings"]["pharmacist"]
    assert jwks["keys"]
    assert all(k["alg"] == "ES256" and "d" not in k for k in jwks["keys"])
