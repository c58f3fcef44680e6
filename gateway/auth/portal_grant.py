"""The token endpoint's side of the portal's grants: ``authorization_code`` (with PKCE) and
``refresh_token``, for the public client ``tokens.PORTAL_CLIENT_ID`` only (``codes.py``).

The access token is a patient token (``tokens.issue`` with role ``patient``, the ``ssin`` and
``sid`` claims and ``patient/`` scopes only: PO-4), valid at most ``access_token_ttl_seconds`` and
never past the portal session's absolute end. A refresh may ask for a narrower ``scope``; a
malformed or broader one is ``invalid_scope`` and the refresh token stays usable (RFC 6749
section 6). ``revoke`` is the portal's side of ``POST /oauth/revoke`` (RFC 7009): it ends the
whole session (``revocation.py``). Errors are RFC 6749 section 5.2 JSON errors, as for the
client-credentials grant.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any

import structlog
from authlib.oauth2.rfc6749 import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
)

from gateway.auth import scopes, tokens
from gateway.auth.codes import GrantStore, InvalidClientIdError, RefreshGrant
from gateway.auth.revocation import Revocations

log = structlog.get_logger("gateway.auth")

AUTHORIZATION_CODE = "authorization_code"
REFRESH_TOKEN = "refresh_token"  # noqa: S105  # a grant type name, not a secret
GRANT_TYPES = (AUTHORIZATION_CODE, REFRESH_TOKEN)
# RFC 6749 section 5.1: token responses are never cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_MAX_TOKEN_CHARS = 4096


def error_answer(error: OAuth2Error) -> tuple[int, dict[str, Any]]:
    """RFC 6749 section 5.2: the JSON error answer, 401 for ``invalid_client``, else 400."""
    status = 401 if error.error == "invalid_client" else 400
    body = {"error": error.error}
    if error.description:
        body["error_description"] = error.description
    return status, body


class PortalGrant:
    def __init__(
        self,
        grants: GrantStore,
        keys: tokens.KeyStore,
        revocations: Revocations,
        *,
        access_token_ttl: int,
        session_max_seconds: int,
    ) -> None:
        self.grants = grants
        self.keys = keys
        self.revocations = revocations
        self.access_token_ttl = access_token_ttl
        self.session_max_seconds = session_max_seconds

    async def respond(
        self, form: dict[str, str], *, issuer: str, audience: str
    ) -> tuple[int, dict[str, Any]]:
        try:
            return 200, await self._token(form, issuer=issuer, audience=audience)
        except OAuth2Error as error:
            log.info("token_refused", error=error.error, reason=error.description)
            return error_answer(error)

    async def _token(self, form: dict[str, str], *, issuer: str, audience: str) -> dict[str, Any]:
        client_id = _portal_client(form)
        if form.get("grant_type") == AUTHORIZATION_CODE:
            code = await self.grants.redeem_code(
                form.get("code", ""),
                client_id=client_id,
                redirect_uri=form.get("redirect_uri"),
                verifier=form.get("code_verifier"),
            )
            session = RefreshGrant(
                ssin=code.ssin,
                scope=code.scope,
                client_id=client_id,
                not_after=time.time() + self.session_max_seconds,
                sid=secrets.token_urlsafe(16),
            )
            scope = session.scope
        else:
            token = form.get("refresh_token", "")
            # Everything that can be refused is checked before the token is used: a bad scope
            # leaves it usable (RFC 6749 section 6 refuses the request, not the grant).
            held = await self.grants.peek_refresh(token, client_id=client_id)
            scope = _narrowed(held.scope, form.get("scope"))
            session = await self.grants.redeem_refresh(token, client_id=client_id)
            if await self.revocations.is_revoked(session.sid):  # logout ended the session
                raise InvalidGrantError(description="the session this token belongs to has ended")
        key = await self.keys.signing_key()
        ttl = min(self.access_token_ttl, int(session.not_after - time.time()))
        access_token, expires_in = tokens.issue(
            key,
            issuer=issuer,
            audience=audience,
            client_id=client_id,
            role="patient",
            nihdi=None,
            ssin=session.ssin,
            sid=session.sid,
            scope=scope,
            ttl=max(ttl, 1),
            not_after=datetime.fromtimestamp(session.not_after, UTC),
        )
        body: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": expires_in,
            "scope": scope,
        }
        # The rotated refresh token keeps the scope granted at login, not the narrowed one.
        refresh = await self.grants.issue_refresh(session)
        if refresh is not None:
            body["refresh_token"] = refresh
        log.info("token_issued", client_id=client_id, scope=scope, expires_in=expires_in)
        return body

    async def revoke(self, form: dict[str, str], *, issuer: str, audience: str) -> None:
        """RFC 7009 section 2.1: revoke a refresh or access token of the portal, and with it the
        whole session (its other access tokens and refresh token). The hint is only a hint
        (section 2.1: search every type); an unknown, expired or foreign token is no error
        (section 2.2). Raises ``OAuth2Error`` only for a missing token or a wrong client."""
        client_id = _portal_client(form)
        token = form.get("token", "")
        if not token:
            raise InvalidRequestError(description="token is required")
        if len(token) > _MAX_TOKEN_CHARS:
            return  # no token of ours is this long
        try:
            refresh = await self.grants.peek_refresh(token, client_id=client_id)
        except OAuth2Error:
            refresh = None
        if refresh is not None:
            await self.revocations.revoke_session(refresh.sid, until=refresh.not_after)
            await self.grants.revoke_refresh(token)
            log.info("session_revoked", client_id=client_id, by="refresh_token")
            return
        try:
            claims = await tokens.verify(token, self.keys, issuer=issuer, audience=audience)
        except tokens.TokenRefused:
            return
        if claims.sid is None or claims.client_id != client_id:
            return
        # The session's end is not in the access token: the longest a session lasts bounds it.
        until = time.time() + self.session_max_seconds
        await self.revocations.revoke_session(claims.sid, until=until)
        log.info("session_revoked", client_id=client_id, by="access_token")


def _portal_client(form: dict[str, str]) -> str:
    """The portal is a public client: it names itself and holds no secret (RFC 6749 2.1)."""
    client_id = form.get("client_id")
    if not client_id:
        raise InvalidRequestError(description="client_id is required (public client)")
    if client_id != tokens.PORTAL_CLIENT_ID:
        raise InvalidClientIdError(description="this grant is for the gateway's portal only")
    return client_id


def _narrowed(held: str, requested: str | None) -> str:
    """RFC 6749 section 6: the scope of a refreshed token is the one asked, which "MUST NOT
    include any scope not originally granted", or the original when none is asked. A malformed
    or broader scope is ``invalid_scope``."""
    if requested is None or requested == "":
        return held
    try:
        wanted = scopes.patient_grant(requested) if requested.strip() else None
    except scopes.ScopeError as exc:
        raise InvalidScopeError(description=str(exc)) from exc
    if wanted is None:
        raise InvalidScopeError(description="scope is blank")
    granted = scopes.patient_grant(held)
    if not all(scopes.within(granted, s) for s in wanted):
        raise InvalidScopeError(description="scope beyond the original grant")
    return scopes.to_string(wanted)
