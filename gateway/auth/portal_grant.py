"""The token endpoint's side of the portal's grants: ``authorization_code`` (with PKCE) and
``refresh_token``, for the public client ``tokens.PORTAL_CLIENT_ID`` only (``codes.py``).

The access token is a patient token (``tokens.issue`` with role ``patient``, the ``ssin`` claim and
``patient/`` scopes only: PO-4), valid at most ``access_token_ttl_seconds`` and never past the
portal session's absolute end. Errors are RFC 6749 section 5.2 JSON errors, as for the
client-credentials grant.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import structlog
from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Error

from gateway.auth import scopes, tokens
from gateway.auth.codes import GrantStore, InvalidClientIdError, RefreshGrant

log = structlog.get_logger("gateway.auth")

AUTHORIZATION_CODE = "authorization_code"
REFRESH_TOKEN = "refresh_token"  # noqa: S105  # a grant type name, not a secret
GRANT_TYPES = (AUTHORIZATION_CODE, REFRESH_TOKEN)
# RFC 6749 section 5.1: token responses are never cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class PortalGrant:
    def __init__(
        self,
        grants: GrantStore,
        keys: tokens.KeyStore,
        *,
        access_token_ttl: int,
        session_max_seconds: int,
    ) -> None:
        self.grants = grants
        self.keys = keys
        self.access_token_ttl = access_token_ttl
        self.session_max_seconds = session_max_seconds

    async def respond(
        self, form: dict[str, str], *, issuer: str, audience: str
    ) -> tuple[int, dict[str, Any]]:
        try:
            return 200, await self._token(form, issuer=issuer, audience=audience)
        except OAuth2Error as error:
            log.info("token_refused", error=error.error, reason=error.description)
            status = 401 if error.error == "invalid_client" else 400
            body = {"error": error.error}
            if error.description:
                body["error_description"] = error.description
            return status, body

    async def _token(self, form: dict[str, str], *, issuer: str, audience: str) -> dict[str, Any]:
        client_id = form.get("client_id")
        if not client_id:
            raise InvalidRequestError(description="client_id is required (public client)")
        if client_id != tokens.PORTAL_CLIENT_ID:
            raise InvalidClientIdError(description="this grant is for the gateway's portal only")
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
            )
        else:
            session = await self.grants.redeem_refresh(
                form.get("refresh_token", ""), client_id=client_id
            )
            if form.get("scope"):
                # RFC 6749 section 6: a refresh may narrow the scope, never widen it.
                narrowed = scopes.patient_grant(form["scope"])
                held = scopes.patient_grant(session.scope)
                if not all(scopes.within(held, s) for s in narrowed):
                    raise InvalidRequestError(description="scope beyond the original grant")
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
            scope=session.scope,
            ttl=max(ttl, 1),
            not_after=datetime.fromtimestamp(session.not_after, UTC),
        )
        body: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": expires_in,
            "scope": session.scope,
        }
        refresh = await self.grants.issue_refresh(session)
        if refresh is not None:
            body["refresh_token"] = refresh
        log.info("token_issued", client_id=client_id, scope=session.scope, expires_in=expires_in)
        return body
