"""The token endpoint: authlib's ``AuthorizationServer`` with FastAPI glue and one grant.

authlib is synchronous and has no FastAPI integration; this subclass implements its framework
hooks (``create_oauth2_request``, ``handle_response``, ``send_signal``) and runs
``create_token_response`` in three steps so that the asynchronous work happens outside authlib:

1. before: read the form, look up the client named by the assertion's ``sub`` (database: no
   cache, so a revocation counts at once) and attach it to the request;
2. authlib: grant selection, ``private_key_jwt`` client authentication (``assertion.py``),
   scope check against the role's ceiling (``scopes.py``);
3. after: the per-client token rate limit is counted, the assertion's ``jti`` is recorded once
   in the key-value store (a replay is refused, RFC 7523 section 3 item 7), the signing key is
   fetched (cache) and the grant signs the access token (``tokens.py``).

Errors are authlib's RFC 6749 section 5.2 JSON errors: ``invalid_client`` (400, or 401 when the
client tried HTTP authentication), ``invalid_scope``, ``unsupported_grant_type``,
``invalid_request``, and 429 with ``Retry-After`` for the rate limit.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any
from urllib.parse import parse_qsl

import orjson
import structlog
from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    InvalidClientError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnsupportedGrantTypeError,
    grants,
)
from authlib.oauth2.rfc6749.hooks import hooked
from fastapi import Request
from fastapi.responses import Response

from gateway.auth import portal_grant, scopes, tokens
from gateway.auth.assertion import CLOCK_SKEW_SECONDS, PrivateKeyJWT
from gateway.auth.errors import TooManyRequests
from gateway.auth.pki import TrustDirectory
from gateway.auth.ratelimit import RateLimiter
from gateway.auth.registry import AUTH_METHOD, ClientRegistry
from gateway.auth.requests import TokenRequest
from gateway.kv import KeyValueStore

log = structlog.get_logger("gateway.auth")

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 16 * 1024  # an assertion with an x5c chain is a few KiB
_MAX_FIELDS = 16


class ClientCredentialsGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]
    """RFC 6749 section 4.4, authenticated by ``private_key_jwt`` only (RFC 7523 section 2.2)."""

    TOKEN_ENDPOINT_AUTH_METHODS = [AUTH_METHOD]  # noqa: RUF012  # authlib's class attribute

    def validate_requested_scope(self) -> None:
        """RFC 6749 section 3.3: what is asked must lie within the role's ceiling; no scope
        asked means the whole ceiling."""
        request: TokenRequest = self.request
        assert request.client is not None
        try:
            request.granted = scopes.grant(request.client.role, request.payload.scope)
        except scopes.ScopeError as exc:
            raise InvalidScopeError(description=str(exc)) from exc

    @hooked  # type: ignore[untyped-decorator]
    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        """RFC 6749 section 4.4.3 / 5.1: an access token, no refresh token."""
        request: TokenRequest = self.request
        client = request.client
        assert client is not None
        assert request.signing_key is not None
        assert request.chain is not None
        scope = scopes.to_string(request.granted)
        access_token, expires_in = tokens.issue(
            request.signing_key,
            issuer=request.issuer,
            audience=request.audience,
            client_id=client.client_id,
            role=client.role,
            nihdi=client.nihdi,
            scope=scope,
            ttl=request.access_token_ttl,
            not_after=request.chain.not_after,
        )
        token = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": expires_in,
            "scope": scope,
        }
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


class GatewayAuthorizationServer(AuthorizationServer):  # type: ignore[misc]  # authlib is untyped
    def __init__(
        self,
        *,
        registry: ClientRegistry,
        keys: tokens.KeyStore,
        kv: KeyValueStore,
        trust: TrustDirectory,
        limiter: RateLimiter,
        assertion_max_lifetime: int,
        access_token_ttl: int,
    ) -> None:
        super().__init__(scopes_supported=scopes.all_scopes())
        self.registry = registry
        self.keys = keys
        self.kv = kv
        self.limiter = limiter
        self.access_token_ttl = access_token_ttl
        self.assertion_auth = PrivateKeyJWT(trust, max_lifetime=assertion_max_lifetime)
        self.register_grant(ClientCredentialsGrant)
        self.register_client_auth_method(AUTH_METHOD, self.assertion_auth)
        # The portal's authorization-code and refresh grants (portal_grant.py), set by state.build.
        self.portal: portal_grant.PortalGrant | None = None

    # -- authlib framework hooks ----------------------------------------------------------------

    def query_client(self, client_id: str) -> None:
        # Never called: PrivateKeyJWT uses the client looked up before authlib runs.
        return None

    def save_token(self, token: dict[str, Any], request: TokenRequest) -> None:
        # Access tokens are self-contained JWTs: nothing to store. Log the fact, not the token.
        client = request.client
        log.info(
            "token_issued",
            client_id=client.client_id if client else None,
            scope=token.get("scope"),
            expires_in=token.get("expires_in"),
        )

    def create_oauth2_request(self, request: TokenRequest) -> TokenRequest:
        return request

    def handle_response(
        self, status: int, body: dict[str, Any], headers: list[tuple[str, str]]
    ) -> Response:
        return Response(orjson.dumps(body), status_code=status, headers=dict(headers))

    def handle_error_response(self, request: TokenRequest, error: OAuth2Error) -> Response:
        if isinstance(error, InvalidClientError):
            # RFC 6749 section 5.2: 401 + WWW-Authenticate only when the client tried the
            # Authorization header; our clients authenticate in the body, so 400.
            error.status_code = 401 if request.headers.get("authorization") else 400
        log.info(
            "token_refused",
            error=error.error,
            reason=error.description,
            client_id=request.registered.client_id if request.registered else None,
        )
        return super().handle_error_response(request, error)  # type: ignore[no-any-return]

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None  # no signal bus; events are logged where they happen

    # -- the endpoint ---------------------------------------------------------------------------

    async def token_response(
        self, request: Request, *, token_url: str, issuer: str, audience: str
    ) -> Response:
        try:
            datalist = await _read_form(request)
        except InvalidRequestError as error:
            empty = TokenRequest(request.method, token_url, dict(request.headers), {})
            return self.handle_error_response(empty, error)
        oauth = TokenRequest(request.method, token_url, dict(request.headers), datalist)
        oauth.token_url, oauth.issuer, oauth.audience = token_url, issuer, audience
        oauth.access_token_ttl = self.access_token_ttl
        try:
            duplicated = [name for name, values in datalist.items() if len(values) > 1]
            if duplicated:  # RFC 6749 section 3.2: parameters MUST NOT be included twice
                raise InvalidRequestError(description="a parameter is repeated")
            if self.portal is not None and oauth.form.get("grant_type") in portal_grant.GRANT_TYPES:
                status, body = await self.portal.respond(
                    oauth.form, issuer=issuer, audience=audience
                )
                headers = {**dict(ClientCredentialsGrant.TOKEN_RESPONSE_HEADER)}
                return Response(orjson.dumps(body), status_code=status, headers=headers)
            grant = self.get_token_grant(oauth)
        except (UnsupportedGrantTypeError, InvalidRequestError) as error:
            return self.handle_error_response(oauth, error)
        try:
            oauth.registered = await self._lookup_client(oauth)
            grant.validate_token_request()
            assert oauth.client is not None
            await self.limiter.hit(oauth.client.client_id)
            await self._once(oauth)
            oauth.signing_key = await self.keys.signing_key()
            return self.handle_response(*grant.create_token_response())
        except OAuth2Error as error:
            return self.handle_error_response(oauth, error)
        except TooManyRequests as exc:
            body = {"error": "temporarily_unavailable", "error_description": exc.message}
            return Response(
                orjson.dumps(body),
                status_code=429,
                headers={**dict(ClientCredentialsGrant.TOKEN_RESPONSE_HEADER), **exc.headers},
            )

    async def revoke_response(self, request: Request, *, issuer: str, audience: str) -> Response:
        """``POST /oauth/revoke`` (RFC 7009): 200 with an empty body whether or not the token
        was known (section 2.2); 400/401 RFC 6749 section 5.2 errors for a request without a
        token or from another client than the portal (the only one with revocable tokens)."""
        headers = dict(ClientCredentialsGrant.TOKEN_RESPONSE_HEADER)
        try:
            datalist = await _read_form(request)
            if any(len(values) > 1 for values in datalist.values()):
                raise InvalidRequestError(description="a parameter is repeated")
            if self.portal is None:
                raise InvalidClientError(description="no client may revoke tokens here")
            form = {name: values[0] for name, values in datalist.items()}
            await self.portal.revoke(form, issuer=issuer, audience=audience)
        except OAuth2Error as error:
            log.info("revocation_refused", error=error.error, reason=error.description)
            status, body = portal_grant.error_answer(error)
            return Response(orjson.dumps(body), status_code=status, headers=headers)
        return Response(b"", status_code=200, headers=headers)

    async def _lookup_client(self, oauth: TokenRequest) -> Any:
        """The registered client named by the assertion's ``sub`` (unverified here: the
        signature is checked against this client's certificate by ``PrivateKeyJWT``)."""
        assertion = oauth.form.get("client_assertion")
        if not assertion:
            return None
        _headers, claims = self.assertion_auth.extract_assertion(assertion)
        subject = claims.get("sub")
        if not isinstance(subject, str):
            return None
        return await self.registry.get(subject)

    async def _once(self, oauth: TokenRequest) -> None:
        """RFC 7523 section 3 item 7: a ``jti`` is accepted once, for as long as the assertion
        could be valid (its ``exp`` plus the allowed clock skew)."""
        claims = oauth.assertion_claims
        client = oauth.client
        assert client is not None
        digest = hashlib.sha256(str(claims["jti"]).encode()).hexdigest()
        ttl = max(1.0, float(claims["exp"]) - time.time() + CLOCK_SKEW_SECONDS + 1)
        if not await self.kv.set_if_absent(f"jti:{client.client_id}:{digest}", ttl):
            raise InvalidClientError(description="assertion jti has already been used")


async def _read_form(request: Request) -> dict[str, list[str]]:
    """The urlencoded body (RFC 6749 section 4.4.2 / appendix B), bounded."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != FORM_TYPE:
        raise InvalidRequestError(description=f"the body must be {FORM_TYPE}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise InvalidRequestError(description="request body too large")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=_MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequestError(description="the body is not a valid form") from exc
    datalist: dict[str, list[str]] = {}
    for name, value in pairs:
        datalist.setdefault(name, []).append(value)
    return datalist
