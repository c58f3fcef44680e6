"""The portal's grant: authorization code with PKCE (RFC 6749 section 4.1, RFC 7636), and refresh
tokens (RFC 6749 section 6) so that a portal session outlives one access token.

The only client is the gateway's own portal, ``tokens.PORTAL_CLIENT_ID``: a public client (it holds
no secret, RFC 6749 section 2.1), so PKCE with ``S256`` is required on every request (RFC 7636
section 4.2; ``plain`` is refused, as OAuth 2.0 Security BCP RFC 9700 section 2.1.1 advises).

Codes and refresh tokens live in the key-value store (Redis or in-process), so any instance can
redeem what another issued. The store holds only the SHA-256 of each value as the key, and the
grant (SSIN, scope, client, redirect URI, challenge) encrypted with the keyring, bound to that key
(AES-GCM associated data): no SSIN in Redis in clear. A code:

- lives ``authorization_code_ttl_seconds`` (default 60 s; RFC 6749 section 4.1.2: short-lived);
- is used once: the first redemption claims a ``used`` marker (``set_if_absent``), any later one
  is ``invalid_grant``, whatever its outcome;
- is bound to the client, the redirect URI and the code challenge it was issued with.

Refresh tokens rotate (each use returns a new one and retires the old, RFC 9700 section 4.14.2)
and never outlive the portal session's absolute end (``portal_session_max_seconds``). Each carries
the session id (``sid``) its access tokens name, the same across rotations, so that revoking the
session (``revocation.py``) ends both. A request that fails before the grant is redeemed (a bad
``scope``) leaves the refresh token usable: ``peek_refresh`` reads it without using it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import asdict, dataclass
from typing import TypeVar

import orjson
from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, OAuth2Error

from gateway.kv import KeyValueStore
from gateway.storage.crypto import Keyring

# RFC 7636 section 4.1: 43-128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")  # BASE64URL(SHA256(verifier)), no padding
CHALLENGE_METHOD = "S256"
_CODE_PREFIX = "authz-code:"
_USED_PREFIX = "authz-code-used:"
_REFRESH_PREFIX = "refresh:"
_REFRESH_USED_PREFIX = "refresh-used:"


class InvalidClientIdError(OAuth2Error):  # type: ignore[misc]  # authlib is untyped
    """RFC 6749 section 5.2 ``invalid_client``: the client is not the portal."""

    error = "invalid_client"


def s256(verifier: str) -> str:
    """RFC 7636 section 4.2: ``BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))``."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def new_verifier() -> str:
    """A code verifier with 256 bits of entropy (RFC 7636 section 7.1)."""
    return secrets.token_urlsafe(48)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class CodeGrant:
    """What an authorization code stands for."""

    ssin: str
    scope: str
    client_id: str
    redirect_uri: str
    code_challenge: str


@dataclass(frozen=True)
class RefreshGrant:
    ssin: str
    scope: str  # what the patient granted at login: every rotation keeps it (RFC 6749 section 6)
    client_id: str
    not_after: float  # epoch seconds: the portal session's absolute end
    sid: str  # the portal session (tokens.py ``sid`` claim)


G = TypeVar("G", CodeGrant, RefreshGrant)


def _owned(kind: type[G], payload: dict[str, object] | None, client_id: str, what: str) -> G:
    """The grant a code or refresh token stands for, if it is usable and the client's own; else
    RFC 6749 section 5.2 ``invalid_grant``."""
    if payload is None:
        raise InvalidGrantError(description=f"the {what} is unknown, expired or already used")
    try:
        grant = kind(**payload)  # type: ignore[arg-type]
    except TypeError as exc:
        raise InvalidGrantError(description=f"the {what} is unknown") from exc
    if not hmac.compare_digest(grant.client_id.encode(), client_id.encode()):
        raise InvalidGrantError(description=f"the {what} was issued to another client")
    return grant


class GrantStore:
    """Authorization codes and refresh tokens in the key-value store (module docstring)."""

    def __init__(self, kv: KeyValueStore, keyring: Keyring) -> None:
        self._kv = kv
        self._keyring = keyring

    async def _put(self, prefix: str, value: str, payload: dict[str, object], ttl: float) -> None:
        key = prefix + _digest(value)
        sealed = self._keyring.encrypt(orjson.dumps(payload), key.encode())
        await self._kv.set(key, sealed, ttl)

    def _open(self, key: str, sealed: bytes | None) -> dict[str, object] | None:
        if sealed is None:
            return None
        try:
            payload = orjson.loads(self._keyring.decrypt(sealed, key.encode()))
        except Exception:  # a tampered or foreign entry reads as absent
            return None
        return payload if isinstance(payload, dict) else None

    async def _take(self, prefix: str, used_prefix: str, value: str) -> dict[str, object] | None:
        """The payload stored under ``value``, at most once ever (the ``used`` marker outlives
        the entry, so a replay after expiry is refused too)."""
        digest = _digest(value)
        if not await self._kv.set_if_absent(used_prefix + digest, 24 * 3600):
            return None
        key = prefix + digest
        sealed = await self._kv.get(key)
        if sealed is not None:
            await self._kv.delete(key)
        return self._open(key, sealed)

    async def _peek(self, prefix: str, used_prefix: str, value: str) -> dict[str, object] | None:
        """The payload stored under ``value`` if it is still unused, without using it."""
        digest = _digest(value)
        if await self._kv.get(used_prefix + digest) is not None:
            return None
        key = prefix + digest
        return self._open(key, await self._kv.get(key))

    async def issue_code(self, grant: CodeGrant, ttl: float) -> str:
        code = secrets.token_urlsafe(32)
        await self._put(_CODE_PREFIX, code, asdict(grant), ttl)
        return code

    async def redeem_code(
        self, code: str, *, client_id: str, redirect_uri: str | None, verifier: str | None
    ) -> CodeGrant:
        """RFC 6749 section 4.1.3 and RFC 7636 section 4.6; raises ``OAuth2Error``."""
        if not verifier:
            raise InvalidRequestError(description="code_verifier is required (PKCE)")
        if not VERIFIER.match(verifier):
            raise InvalidRequestError(description="code_verifier is malformed (RFC 7636 4.1)")
        if not code or len(code) > 128:
            raise InvalidRequestError(description="code is required")
        payload = await self._take(_CODE_PREFIX, _USED_PREFIX, code)
        grant = _owned(CodeGrant, payload, client_id, "code")
        # Bytes: compare_digest refuses non-ASCII str, and these come from the client's form.
        if redirect_uri is None or not hmac.compare_digest(
            grant.redirect_uri.encode(), redirect_uri.encode()
        ):
            # RFC 6749 section 4.1.3: identical to the authorization request's redirect_uri
            raise InvalidGrantError(description="redirect_uri does not match the authorization")
        if not hmac.compare_digest(s256(verifier), grant.code_challenge):
            raise InvalidGrantError(description="code_verifier does not match the code_challenge")
        return grant

    async def issue_refresh(self, grant: RefreshGrant) -> str | None:
        ttl = grant.not_after - time.time()
        if ttl <= 1:
            return None
        token = secrets.token_urlsafe(32)
        await self._put(_REFRESH_PREFIX, token, asdict(grant), ttl)
        return token

    async def peek_refresh(self, token: str, *, client_id: str) -> RefreshGrant:
        """The grant of a usable refresh token, leaving it usable; raises ``OAuth2Error``."""
        return self._check_refresh(
            await self._peek(_REFRESH_PREFIX, _REFRESH_USED_PREFIX, self._bounded(token)),
            client_id,
        )

    async def redeem_refresh(self, token: str, *, client_id: str) -> RefreshGrant:
        """The grant of a refresh token, which is used up (rotation); raises ``OAuth2Error``."""
        return self._check_refresh(
            await self._take(_REFRESH_PREFIX, _REFRESH_USED_PREFIX, self._bounded(token)),
            client_id,
        )

    @staticmethod
    def _bounded(token: str) -> str:
        if not token or len(token) > 128:
            raise InvalidRequestError(description="refresh_token is required")
        return token

    @staticmethod
    def _check_refresh(payload: dict[str, object] | None, client_id: str) -> RefreshGrant:
        grant = _owned(RefreshGrant, payload, client_id, "refresh token")
        if grant.not_after <= time.time():
            raise InvalidGrantError(description="the session this token belongs to has ended")
        return grant

    async def revoke_refresh(self, token: str) -> None:
        """Retire a refresh token at once (logout, RFC 7009)."""
        digest = _digest(token)
        await self._kv.set_if_absent(_REFRESH_USED_PREFIX + digest, 24 * 3600)
        await self._kv.delete(_REFRESH_PREFIX + digest)
