"""``POST /oauth/token``, ``POST /oauth/revoke``, ``GET /oauth/jwks`` and
``GET /.well-known/smart-configuration``."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from gateway.auth import scopes, state
from gateway.auth.assertion import (
    ASSERTION_ALGORITHMS,
    ASSERTION_TYPE,
    MAX_ASSERTION_HEADER_BYTES,
)
from gateway.auth.codes import CHALLENGE_METHOD
from gateway.auth.issuer import fhir_audience, issuer
from gateway.auth.portal_grant import AUTHORIZATION_CODE, REFRESH_TOKEN
from gateway.auth.registry import AUTH_METHOD, GRANT_TYPE
from gateway.auth.state import AUTHORIZE_PATH, JWKS_PATH, REVOKE_PATH, TOKEN_PATH, AuthState
from gateway.urls import public_base

router = APIRouter()

# JWKS may be cached briefly: a new key signs at once, and a verifier that meets an unknown kid
# refetches (RFC 7517; the gateway itself does the same).
_JWKS_MAX_AGE = 60


def _json(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)


@router.post(TOKEN_PATH, include_in_schema=True, summary="OAuth 2.0 token endpoint")
async def token(request: Request) -> Response:
    """``client_credentials`` with ``private_key_jwt`` (RFC 6749 4.4, RFC 7523 2.2)."""
    auth: AuthState = request.app.state.auth
    return await auth.server.token_response(
        request,
        token_url=state.token_url(request),
        issuer=issuer(request),
        audience=fhir_audience(request),
    )


@router.post(REVOKE_PATH, summary="OAuth 2.0 token revocation (RFC 7009), the portal's tokens")
async def revoke(request: Request) -> Response:
    """A portal refresh or access token ends its whole session (docs/auth.md)."""
    auth: AuthState = request.app.state.auth
    return await auth.server.revoke_response(
        request, issuer=issuer(request), audience=fhir_audience(request)
    )


@router.get(JWKS_PATH, summary="Public keys of access tokens (RFC 7517)")
async def jwks(request: Request) -> Response:
    auth: AuthState = request.app.state.auth
    keys = await auth.keys.published()
    if not keys:  # a fresh install publishes the key it will sign with
        await auth.keys.signing_key()
        keys = await auth.keys.published()
    return _json(
        {"keys": [key.jwk() for key in keys]},
        {"Cache-Control": f"public, max-age={_JWKS_MAX_AGE}"},
    )


def smart_configuration(request: Request) -> dict[str, Any]:
    settings = request.app.state.settings
    base = public_base(request)
    return {
        "issuer": issuer(request),
        "jwks_uri": base + JWKS_PATH,
        "authorization_endpoint": base + AUTHORIZE_PATH,
        "token_endpoint": state.token_url(request),
        "revocation_endpoint": base + REVOKE_PATH,
        # "none": the portal, a public client, with PKCE (docs/portal.md)
        "token_endpoint_auth_methods_supported": [AUTH_METHOD, "none"],
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "grant_types_supported": [GRANT_TYPE, AUTHORIZATION_CODE, REFRESH_TOKEN],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": [CHALLENGE_METHOD],
        "scopes_supported": scopes.all_scopes() + list(scopes.PATIENT_CEILING),
        "capabilities": [
            "client-confidential-asymmetric",
            "client-public",
            "permission-v2",
            "permission-v1",
            "permission-patient",
        ],
        # Gateway-specific facts a client developer needs (docs/auth.md).
        "ehealth_gateway": {
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion_max_lifetime_seconds": settings.assertion_max_lifetime_seconds,
            "client_assertion_max_header_bytes": MAX_ASSERTION_HEADER_BYTES,
            "access_token_lifetime_seconds": settings.access_token_ttl_seconds,
            "access_token_audience": fhir_audience(request),
            "access_token_signing_alg": "ES256",
            "role_scope_ceilings": {role: list(c) for role, c in scopes.ROLE_CEILINGS.items()},
            "default_scope": "the whole ceiling of the client's role",
            "rate_limit_per_minute": settings.rate_limit_per_minute,
            "token_rate_limit_per_minute": settings.token_rate_limit_per_minute,
            "certificate_nihdi": "subject OU=NIHDI=<number>",
        },
    }


@router.get("/.well-known/smart-configuration", summary="SMART on FHIR configuration")
async def smart(request: Request) -> Response:
    return _json(smart_configuration(request), {"Cache-Control": "public, max-age=300"})
