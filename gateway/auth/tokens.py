"""Access tokens: JWTs signed by the gateway (ES256, ``kid``), their keys, JWKS and verification.

Claims (RFC 9068 profile, ``typ: at+jwt``): ``iss`` (the gateway), ``aud`` (the FHIR base URL),
``sub`` = ``client_id``, ``role``, ``nihdi`` (absent for roles without one), ``scope``, ``iat``,
``exp`` (at most ``access_token_ttl_seconds`` <= 15 min ahead, and never after the client
certificate's ``notAfter``), ``jti``. A token of role ``patient`` carries the patient's ``ssin``
instead of a NIHDI number (issued by the gateway's own portal, ``PORTAL_CLIENT_ID``); no other
role may carry one. It also names its portal session (``sid``, OpenID Connect Front-Channel
Logout 1.0 section 3), so that logout revokes every token of the session (``revocation.py``); a
patient token without ``sid`` is refused.

Signing keys live in the ``signing_keys`` table, the private half encrypted at rest with the
gateway's Keyring. ``gateway keys rotate`` adds a key that signs from then on and retires the
others; a retired key stays published in ``/oauth/jwks`` (and keeps verifying) for the longest
time a token it signed can live, then disappears. ``rotate --revoke-previous`` withdraws the
other keys at once (a compromised key).

Each instance keeps the keys in memory for ``signing_key_cache_seconds`` (default 30 s) so that
verifying a token never touches the database. What a process publishes is exactly what it
verifies with (one cache serves both, and the publication window is evaluated at each call), so
a key that leaves the JWKS stops verifying at the same moment on that instance; a change made by
another process (a rotation, a revocation) reaches every instance within the cache time. An
unknown ``kid`` triggers one early reload (at most once a second), so a key created by another
instance is picked up at once. Because an instance may keep signing with a key for up to the
cache time after another process retired it, a retired key is published for
``MAX_ACCESS_TOKEN_TTL + signing_key_cache_seconds``.

A token whose signature and claims were verified is remembered (``VerifiedTokens``, issue 18):
checking an ES256 signature is most of what authentication costs, and a client sends the same
token for up to 15 minutes. A remembered token is still refused as soon as its key stops being
published or its ``exp`` passes; revocation (sessions, clients) is checked by the caller on every
request, never remembered.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jws, jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwk import ECKey
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.storage.crypto import Keyring, signing_key_associated
from gateway.storage.tables import signing_keys

ALG = "ES256"
TOKEN_TYPE = "at+jwt"  # noqa: S105  # RFC 9068 section 2.1 media type, not a secret
MAX_ACCESS_TOKEN_TTL = 900  # 15 minutes: the ceiling of access_token_ttl_seconds
CLOCK_SKEW_SECONDS = 5  # between gateway instances (they sign and verify each other's tokens)
_MISS_RELOAD_INTERVAL = 1.0
# The client id in patients' access tokens: the gateway's own portal, not a registered client
# (docs/architecture.md section 1: patients log in to the portal: login.py, portal_grant.py).
PORTAL_CLIENT_ID = "gateway-portal"


class TokenRefused(Exception):
    """The bearer token is not acceptable; the message is safe to show the client."""


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class SigningKey:
    kid: str
    public: ECKey
    private: ECKey | None  # only for keys that still sign
    created_at: datetime
    retired_at: datetime | None
    revoked_at: datetime | None

    def published(self, now: datetime, window: timedelta) -> bool:
        if self.revoked_at is not None:
            return False
        return self.retired_at is None or self.retired_at > now - window

    def jwk(self) -> dict[str, Any]:
        return {**self.public.as_dict(), "kid": self.kid, "alg": ALG, "use": "sig"}


_associated = signing_key_associated  # gateway keys reencrypt reseals these rows too


class KeyStore:
    """Signing and verification keys, from the database, cached in memory (module docstring)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        keyring: Keyring,
        *,
        cache_seconds: float = 30.0,
    ) -> None:
        self._sessions = sessions
        self._keyring = keyring
        self.cache_seconds = cache_seconds
        self.publish_window = timedelta(seconds=MAX_ACCESS_TOKEN_TTL + cache_seconds)
        self._keys: dict[str, SigningKey] = {}
        self._loaded_at = -math.inf
        self._last_miss_reload = -math.inf
        self._lock = asyncio.Lock()

    # -- loading ----------------------------------------------------------------------------

    def _decode(self, row: Any) -> SigningKey:
        m = row._mapping
        public = ECKey.import_key(json.loads(m["public_jwk"]))
        private = None
        if m["retired_at"] is None and m["revoked_at"] is None:
            der = self._keyring.decrypt(m["private_key"], _associated(m["kid"]), m["key_id"])
            raw = serialization.load_der_private_key(der, password=None)
            assert isinstance(raw, ec.EllipticCurvePrivateKey)
            private = ECKey(raw, raw)
        return SigningKey(
            kid=m["kid"],
            public=public,
            private=private,
            created_at=_aware(m["created_at"]) or datetime.now(UTC),
            retired_at=_aware(m["retired_at"]),
            revoked_at=_aware(m["revoked_at"]),
        )

    async def _load(self) -> None:
        cutoff = datetime.now(UTC) - self.publish_window
        query = select(signing_keys).where(
            signing_keys.c.revoked_at.is_(None),
            (signing_keys.c.retired_at.is_(None)) | (signing_keys.c.retired_at > cutoff),
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        self._keys = {key.kid: key for key in (self._decode(row) for row in rows)}
        self._loaded_at = time.monotonic()

    async def _fresh(self) -> None:
        if time.monotonic() - self._loaded_at < self.cache_seconds:
            return
        async with self._lock:
            if time.monotonic() - self._loaded_at >= self.cache_seconds:
                await self._load()

    def invalidate(self) -> None:
        """Forget the cached keys (the next call reloads them)."""
        self._loaded_at = -math.inf

    # -- use --------------------------------------------------------------------------------

    async def signing_key(self) -> SigningKey:
        """The newest active key; the first call on an empty table creates one."""
        await self._fresh()
        key = self._newest_active()
        if key is None:
            async with self._lock:
                await self._load()
                key = self._newest_active()
                if key is None:
                    await self._insert(datetime.now(UTC))
                    await self._load()
                    key = self._newest_active()
        assert key is not None
        return key

    def _newest_active(self) -> SigningKey | None:
        active = [k for k in self._keys.values() if k.private is not None]
        return max(active, key=lambda k: k.created_at) if active else None

    async def published(self) -> list[SigningKey]:
        """The keys ``/oauth/jwks`` lists (and the only ones that verify)."""
        await self._fresh()
        now = datetime.now(UTC)
        keys = [k for k in self._keys.values() if k.published(now, self.publish_window)]
        return sorted(keys, key=lambda k: k.created_at, reverse=True)

    async def verification_key(self, kid: str) -> ECKey | None:
        await self._fresh()
        key = self._keys.get(kid)
        if key is None and time.monotonic() - self._last_miss_reload >= _MISS_RELOAD_INTERVAL:
            # A key another instance just created: reload once, early (rate-limited).
            self._last_miss_reload = time.monotonic()
            async with self._lock:
                await self._load()
            key = self._keys.get(kid)
        if key is None or not key.published(datetime.now(UTC), self.publish_window):
            return None
        return key.public

    # -- administration (``gateway keys``) ------------------------------------------------------

    async def _insert(self, now: datetime) -> str:
        raw = ec.generate_private_key(ec.SECP256R1())
        public = ECKey(raw.public_key(), raw.public_key())
        kid = public.thumbprint()  # RFC 7638
        der = raw.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        async with self._sessions() as session:
            await session.execute(
                insert(signing_keys).values(
                    kid=kid,
                    alg=ALG,
                    public_jwk=json.dumps(public.as_dict()),
                    private_key=self._keyring.encrypt(der, _associated(kid)),
                    key_id=self._keyring.key_id,
                    created_at=now,
                )
            )
            await session.commit()
        return kid

    async def rotate(self, *, revoke_previous: bool = False) -> str:
        """Add a key that signs from now on; retire (or revoke) the others. Returns its kid."""
        now = datetime.now(UTC)
        async with self._lock:
            kid = await self._insert(now)
            async with self._sessions() as session:
                await session.execute(
                    update(signing_keys)
                    .where(signing_keys.c.kid != kid, signing_keys.c.retired_at.is_(None))
                    .values(retired_at=now)
                )
                if revoke_previous:
                    await session.execute(
                        update(signing_keys)
                        .where(signing_keys.c.kid != kid, signing_keys.c.revoked_at.is_(None))
                        .values(revoked_at=now)
                    )
                await session.commit()
            await self._load()
        return kid

    async def describe(self) -> list[dict[str, Any]]:
        """Every key with its state, for ``gateway keys list`` (no key material)."""
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(
                        signing_keys.c.kid,
                        signing_keys.c.created_at,
                        signing_keys.c.retired_at,
                        signing_keys.c.revoked_at,
                    ).order_by(signing_keys.c.created_at)
                )
            ).all()
        now = datetime.now(UTC)
        described = []
        for kid, created, retired, revoked in rows:
            retired, revoked = _aware(retired), _aware(revoked)
            if revoked is not None:
                state = "revoked"
            elif retired is None:
                state = "signing"
            elif retired > now - self.publish_window:
                state = "retired, published"
            else:
                state = "retired"
            described.append(
                {
                    "kid": kid,
                    "created_at": _aware(created),
                    "retired_at": retired,
                    "revoked_at": revoked,
                    "state": state,
                }
            )
        return described


# -- tokens -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessClaims:
    client_id: str
    role: str
    nihdi: str | None
    scope: str
    exp: int
    ssin: str | None = None  # role patient only
    sid: str | None = None  # role patient only: the portal session (logout revokes it)


def issue(
    key: SigningKey,
    *,
    issuer: str,
    audience: str,
    client_id: str,
    role: str,
    nihdi: str | None,
    scope: str,
    ttl: int,
    not_after: datetime,
    now: int | None = None,
    ssin: str | None = None,
    sid: str | None = None,
) -> tuple[str, int]:
    """Sign an access token; returns it and its lifetime in seconds (``expires_in``)."""
    assert key.private is not None
    issued = int(time.time()) if now is None else now
    expires = min(issued + ttl, int(not_after.timestamp()))
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": client_id,
        "client_id": client_id,
        "role": role,
        "scope": scope,
        "iat": issued,
        "exp": expires,
        "jti": secrets.token_urlsafe(16),
    }
    if nihdi:
        claims["nihdi"] = nihdi
    if ssin:
        claims["ssin"] = ssin
    if sid:
        claims["sid"] = sid
    header = {"alg": ALG, "kid": key.kid, "typ": TOKEN_TYPE}
    return jwt.encode(header, claims, key.private, algorithms=[ALG]), expires - issued


@dataclass(frozen=True)
class _Verified:
    issuer: str
    audience: str
    kid: str
    exp: float  # as signed: joserfc compares it unrounded
    claims: AccessClaims


class VerifiedTokens:
    """Tokens that passed ``verify``, by the SHA-256 of the token (the bearer secret itself is
    not kept), at most ``max_entries`` of them: the oldest entry makes room for a new one, and an
    entry found expired is dropped. Per process; a miss only costs a full verification."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._entries: dict[bytes, _Verified] = {}

    @staticmethod
    def key(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def get(self, key: bytes, issuer: str, audience: str) -> _Verified | None:
        entry = self._entries.get(key)
        if entry is None or entry.issuer != issuer or entry.audience != audience:
            return None  # verified for another audience (another base URL): verify again
        return entry

    def put(self, key: bytes, entry: _Verified) -> None:
        if key not in self._entries and len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]  # the oldest (insertion order)
        self._entries[key] = entry

    def drop(self, key: bytes) -> None:
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)


async def verify(
    token: str,
    keys: KeyStore,
    *,
    issuer: str,
    audience: str,
    verified: VerifiedTokens | None = None,
) -> AccessClaims:
    """Check signature (a published key), type, ``iss``, ``aud``, ``exp`` and the claims we need.

    With ``verified``, a token already verified for this issuer and audience skips the signature
    and claim checks but not the key's publication nor ``exp``.
    Raises ``TokenRefused`` (RFC 6750 ``invalid_token``) with a client-safe reason.
    """
    if verified is None:
        return (await _verify(token, keys, issuer=issuer, audience=audience)).claims
    key = verified.key(token)
    entry = verified.get(key, issuer, audience)
    if entry is None:
        entry = await _verify(token, keys, issuer=issuer, audience=audience)
        verified.put(key, entry)
        return entry.claims
    if await keys.verification_key(entry.kid) is None:
        verified.drop(key)
        raise TokenRefused("access token signed by a key that is not published")
    if entry.exp <= int(time.time()) - CLOCK_SKEW_SECONDS:  # joserfc's rule, same leeway
        verified.drop(key)
        raise TokenRefused("access token has expired")
    return entry.claims


async def _verify(token: str, keys: KeyStore, *, issuer: str, audience: str) -> _Verified:
    try:
        obj = jws.extract_compact(token.encode("ascii"))
    except (JoseError, ValueError, UnicodeEncodeError) as exc:
        raise TokenRefused("malformed access token") from exc
    header = obj.headers()
    kid = header.get("kid")
    if header.get("alg") != ALG or header.get("typ") != TOKEN_TYPE or not isinstance(kid, str):
        raise TokenRefused("not an access token of this gateway")
    public = await keys.verification_key(kid)
    if public is None:
        raise TokenRefused("access token signed by a key that is not published")
    try:
        if not jws.validate_compact(obj, public, algorithms=[ALG]):
            raise TokenRefused("access token signature is invalid")
        claims = json.loads(obj.payload or b"")
    except (JoseError, ValueError) as exc:
        raise TokenRefused("access token signature is invalid") from exc
    if not isinstance(claims, dict):
        raise TokenRefused("malformed access token")
    registry = jwt.JWTClaimsRegistry(
        leeway=CLOCK_SKEW_SECONDS,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": audience},
        exp={"essential": True},
        iat={"essential": True},
        client_id={"essential": True},
        role={"essential": True},
        scope={"essential": True, "allow_blank": True},
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        if isinstance(exc, ExpiredTokenError):
            raise TokenRefused("access token has expired") from exc
        raise TokenRefused("access token claims are not valid here") from exc
    nihdi, ssin, sid = claims.get("nihdi"), claims.get("ssin"), claims.get("sid")
    values = (claims["client_id"], claims["role"], claims["scope"])
    if not all(isinstance(v, str) for v in values) or not isinstance(nihdi, str | None):
        raise TokenRefused("malformed access token")
    # A patient token names its patient and nothing else does (PO-4: a patient sees only himself).
    if (claims["role"] == "patient") != isinstance(ssin, str) or (ssin is not None and nihdi):
        raise TokenRefused("malformed access token")
    # ... and its session, so that logout can end it (revocation.py).
    if (claims["role"] == "patient") != isinstance(sid, str) or (sid is not None and not sid):
        raise TokenRefused("malformed access token")
    access = AccessClaims(
        client_id=claims["client_id"],
        role=claims["role"],
        nihdi=nihdi,
        scope=claims["scope"],
        exp=int(claims["exp"]),
        ssin=ssin,
        sid=sid,
    )
    return _Verified(issuer, audience, kid, float(claims["exp"]), access)
