"""The auth components of one application (``app.state.auth``), and the URLs tokens are bound to.

URLs: the token endpoint (the ``aud`` of client assertions), the issuer (``iss`` of access tokens)
and the FHIR base (their ``aud``) derive from ``GATEWAY_PUBLIC_BASE_URL`` (and ``GATEWAY_ISSUER``),
else from the request's base URL. Production requires the public URL (``Settings``): behind a
proxy the request's own URL is not what clients see.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.auth.accounts import PatientAccounts
from gateway.auth.codes import GrantStore
from gateway.auth.pki import TrustDirectory
from gateway.auth.portal_grant import PortalGrant
from gateway.auth.ratelimit import RateLimiter
from gateway.auth.registry import ClientRegistry, ClientStatusCache
from gateway.auth.revocation import Revocations
from gateway.auth.server import GatewayAuthorizationServer
from gateway.auth.throttle import LoginThrottle
from gateway.auth.tokens import KeyStore, VerifiedTokens
from gateway.kv import KeyValueStore
from gateway.settings import Settings
from gateway.storage.crypto import Keyring
from gateway.urls import public_base

TOKEN_PATH = "/oauth/token"  # noqa: S105  # a URL path, not a secret
REVOKE_PATH = "/oauth/revoke"
JWKS_PATH = "/oauth/jwks"
AUTHORIZE_PATH = "/oauth/authorize"


@dataclass
class AuthState:
    registry: ClientRegistry
    statuses: ClientStatusCache
    keys: KeyStore
    trust: TrustDirectory
    limiter: RateLimiter
    server: GatewayAuthorizationServer
    # The portal's login (docs/portal.md): patient accounts, codes and refresh tokens, the
    # throttle of wrong passwords and the revoked sessions.
    accounts: PatientAccounts
    grants: GrantStore
    throttle: LoginThrottle
    revocations: Revocations
    # Access tokens already verified (tokens.py): the signature check is not repeated per request.
    verified: VerifiedTokens


def build(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    keyring: Keyring,
    kv: KeyValueStore,
) -> AuthState:
    registry = ClientRegistry(sessions)
    keys = KeyStore(sessions, keyring, cache_seconds=settings.signing_key_cache_seconds)
    trust = TrustDirectory(settings.trust_dir())
    server = GatewayAuthorizationServer(
        registry=registry,
        keys=keys,
        kv=kv,
        trust=trust,
        limiter=RateLimiter(kv, settings.token_rate_limit_per_minute, namespace="token"),
        assertion_max_lifetime=settings.assertion_max_lifetime_seconds,
        access_token_ttl=settings.access_token_ttl_seconds,
    )
    grants = GrantStore(kv, keyring)
    revocations = Revocations(kv)
    server.portal = PortalGrant(
        grants,
        keys,
        revocations,
        access_token_ttl=settings.access_token_ttl_seconds,
        session_max_seconds=settings.portal_session_max_seconds,
    )
    return AuthState(
        registry=registry,
        statuses=ClientStatusCache(registry, settings.client_status_cache_seconds),
        keys=keys,
        trust=trust,
        limiter=RateLimiter(kv, settings.rate_limit_per_minute, namespace="fhir"),
        server=server,
        accounts=PatientAccounts(sessions, keyring),
        grants=grants,
        throttle=LoginThrottle(
            kv,
            keyring,
            free_failures=settings.login_max_failures,
            base_delay=settings.login_delay_base_seconds,
            max_delay=settings.login_delay_max_seconds,
            memory_seconds=settings.login_failure_memory_seconds,
        ),
        revocations=revocations,
        verified=VerifiedTokens(),
    )


def token_url(request: Request) -> str:
    return public_base(request) + TOKEN_PATH
