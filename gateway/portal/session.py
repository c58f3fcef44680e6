"""Server-side portal sessions: the browser holds only a random id in a cookie; the state (access
and refresh token, the patient's SSIN, CSRF token, language, times) lives in the key-value store
(Redis or in-process), encrypted with the keyring and bound to the id's hash, so any instance
serves any request and nothing readable sits in Redis.

Cookie: ``HttpOnly``, ``SameSite=Lax``, ``Path=/portal``, ``Secure`` except on plain-http loopback
and test hosts (``cookie_is_secure``); its name takes the ``__Host-`` prefix when secure (the
browser then refuses it from another subdomain or without TLS).

A session ends after ``portal_idle_timeout_seconds`` without a request (the store entry expires
and ``last_seen`` is checked) and ``portal_session_max_seconds`` after login (absolute), and at
logout, which deletes it and revokes its tokens (``flow.logout``: the refresh token and every
access token issued to the session are refused from then on).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

import orjson
from fastapi import Request, Response

from gateway.kv import KeyValueStore
from gateway.storage.crypto import Keyring
from gateway.urls import public_base

COOKIE = "portal_session"
SECURE_COOKIE = "__Host-portal_session"
_PREFIX = "portal-session:"
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass
class Flash:
    message: str  # an English msgid, translated when shown
    level: str = "info"  # info | error


@dataclass
class PortalSession:
    ssin: str
    access_token: str
    refresh_token: str | None
    token_expires_at: float
    locale: str
    created_at: float
    last_seen: float
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    flash: list[Flash] = field(default_factory=list)
    session_id: str = field(default="", repr=False)  # not stored: the key is its hash
    # Acting for someone (PO-4, gateway/portal/mandates.py): his SSIN, the mandate, its actions.
    acting_for: str | None = None
    acting_for_mandate: str | None = None
    acting_actions: list[str] = field(default_factory=list)

    def stop_acting(self) -> None:
        self.acting_for = self.acting_for_mandate = None
        self.acting_actions = []

    def take_flash(self) -> list[Flash]:
        messages, self.flash = self.flash, []
        return messages


def cookie_is_secure(request: Request) -> bool:
    """``Secure`` unless the portal is reached over plain http on a loopback or test host."""
    url = urlsplit(public_base(request))
    host = (url.hostname or "").lower()
    local = host in _LOCAL_HOSTS or host.endswith((".localhost", ".test"))
    return not (url.scheme == "http" and local)


def cookie_name(request: Request) -> str:
    return SECURE_COOKIE if cookie_is_secure(request) else COOKIE


class SessionStore:
    def __init__(
        self,
        kv: KeyValueStore,
        keyring: Keyring,
        *,
        idle_seconds: int,
        max_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._kv = kv
        self._keyring = keyring
        self.idle_seconds = idle_seconds
        self.max_seconds = max_seconds
        self.now = clock  # seconds since the epoch: the app's clock (``context.store``)

    @staticmethod
    def _key(session_id: str) -> str:
        return _PREFIX + hashlib.sha256(session_id.encode()).hexdigest()

    async def save(self, session: PortalSession) -> None:
        if not session.session_id:
            session.session_id = secrets.token_urlsafe(32)
        key = self._key(session.session_id)
        payload = asdict(session)
        payload.pop("session_id")
        sealed = self._keyring.encrypt(orjson.dumps(payload), key.encode())
        remaining = session.created_at + self.max_seconds - self.now()
        await self._kv.set(key, sealed, max(1.0, min(self.idle_seconds, remaining)))

    async def load(self, session_id: str | None) -> PortalSession | None:
        if not session_id or len(session_id) > 128:
            return None
        key = self._key(session_id)
        sealed = await self._kv.get(key)
        if sealed is None:
            return None
        try:
            payload = orjson.loads(self._keyring.decrypt(sealed, key.encode()))
            payload["flash"] = [Flash(**f) for f in payload.get("flash", [])]
            session = PortalSession(**payload, session_id=session_id)
        except Exception:  # a tampered or outdated entry is no session
            return None
        now = self.now()
        if now - session.last_seen > self.idle_seconds or now - session.created_at > (
            self.max_seconds
        ):
            await self._kv.delete(key)
            return None
        return session

    async def delete(self, session: PortalSession) -> None:
        await self.delete_id(session.session_id)

    async def delete_id(self, session_id: str | None) -> None:
        if session_id and len(session_id) <= 128:
            await self._kv.delete(self._key(session_id))


def set_cookie(request: Request, response: Response, session: PortalSession) -> None:
    secure = cookie_is_secure(request)
    response.set_cookie(
        cookie_name(request),
        session.session_id,
        path="/" if secure else "/portal",  # __Host- cookies must have Path=/
        secure=secure,
        httponly=True,
        samesite="lax",
    )


def clear_cookie(request: Request, response: Response) -> None:
    secure = cookie_is_secure(request)
    response.delete_cookie(
        cookie_name(request),
        path="/" if secure else "/portal",
        secure=secure,
        httponly=True,
        samesite="lax",
    )


def session_cookie(request: Request) -> str | None:
    return request.cookies.get(cookie_name(request))
