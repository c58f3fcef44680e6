"""Who is calling: the one FastAPI dependency every ``/fhir`` route (except ``metadata``) goes through.

``authenticate`` accepts only a bearer access token issued by this gateway (RFC 6750 section 2.1,
``Authorization: Bearer``): signed by a key it publishes, of type ``at+jwt``, for this issuer and
this FHIR base, unexpired, of a client that is still active. It then counts the request against
the client's rate limit. A patient's token whose portal session was ended (logout) is refused too
(``revocation.py``). Any failure is 401 with a ``Bearer`` challenge (``invalid_token``), or
429; a valid token that lacks a scope or a role is 403 (``scopes.require_scopes``).

The resulting ``Principal`` (client id, role, NIHDI number, scopes) is what every later access
decision uses (SEC-9: the assertion carries role and NIHDI).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal, Protocol

import structlog
from fastapi import Depends, Request

from gateway.auth import tokens
from gateway.auth.errors import InvalidToken
from gateway.auth.issuer import fhir_audience, issuer
from gateway.auth.ratelimit import RateLimiter
from gateway.auth.registry import ClientStatusCache
from gateway.auth.revocation import Revocations

Role = Literal["prescriber", "pharmacist", "fund", "admin", "patient"]
ROLES: frozenset[str] = frozenset({"prescriber", "pharmacist", "fund", "admin", "patient"})
_MAX_TOKEN_BYTES = 4096


class TokenChecks(Protocol):
    """What ``authenticate`` uses of ``state.AuthState``, which sits above it (it builds the
    authorization server, whose scope checks depend on this module)."""

    keys: tokens.KeyStore
    verified: tokens.VerifiedTokens
    statuses: ClientStatusCache
    revocations: Revocations
    limiter: RateLimiter


@dataclass(frozen=True)
class Principal:
    """The authenticated caller, as later access decisions see it."""

    client_id: str
    role: Role
    nihdi: str | None = None  # professional NIHDI, or the pharmacy's organisation NIHDI
    ssin: str | None = None  # patients only
    scopes: frozenset[str] = field(default_factory=frozenset)


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise InvalidToken(
            "authentication required: send Authorization: Bearer <token>", missing=True
        )
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise InvalidToken("the Authorization header must be Bearer <access token>")
    if len(token) > _MAX_TOKEN_BYTES:
        raise InvalidToken("malformed access token")
    return token


async def authenticate(request: Request) -> Principal:
    auth: TokenChecks = request.app.state.auth
    token = bearer_token(request)
    try:
        claims = await tokens.verify(
            token,
            auth.keys,
            issuer=issuer(request),
            audience=fhir_audience(request),
            verified=auth.verified,
        )
    except tokens.TokenRefused as exc:
        raise InvalidToken(str(exc)) from exc
    if claims.role not in ROLES:
        raise InvalidToken("malformed access token")
    if claims.role == "patient":
        # Patients' tokens come from the gateway's own portal (tokens.PORTAL_CLIENT_ID), which
        # is not a registered client; the signature proves the gateway issued them.
        if claims.client_id != tokens.PORTAL_CLIENT_ID or not claims.ssin or not claims.sid:
            raise InvalidToken("malformed access token")
        # Logout (or RFC 7009 revocation) ended the session this token belongs to.
        if await auth.revocations.is_revoked(claims.sid):
            raise InvalidToken("access token has been revoked")
    elif not await auth.statuses.is_active(claims.client_id):
        raise InvalidToken("the client of this access token is no longer active")
    structlog.contextvars.bind_contextvars(client_id=claims.client_id)
    if claims.ssin:
        # Every patient comes through the one portal client id: limit each patient on his own,
        # under a keyed hash (no SSIN in the key-value store).
        await auth.limiter.hit(
            "patient-" + request.app.state.keyring.search_hash("ssin", claims.ssin)[:32]
        )
    else:
        await auth.limiter.hit(claims.client_id)
    principal = Principal(
        client_id=claims.client_id,
        role=claims.role,  # type: ignore[arg-type]  # checked against ROLES above
        nihdi=claims.nihdi,
        ssin=claims.ssin,
        scopes=frozenset(claims.scope.split()),
    )
    # The refusal audit (gateway.audit.refusals) names the caller of a 403 raised before any
    # service ran (a missing scope, a wrong role): SEC-5 WHO.
    request.state.principal = principal
    return principal


Caller = Annotated[Principal, Depends(authenticate)]
