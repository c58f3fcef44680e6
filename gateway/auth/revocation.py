"""The revocation list: portal sessions whose tokens the resource server refuses.

Access tokens are self-contained JWTs, so ending a session cannot recall them; instead every
patient token names its session (``sid``, ``tokens.py``) and logout (or ``POST /oauth/revoke``,
RFC 7009) puts the session on this list. ``identity.authenticate`` refuses a token of a listed
session (401 ``invalid_token``) and the refresh grant refuses its refresh tokens
(``invalid_grant``).

Entries live in the key-value store (shared by every instance with Redis) under the SHA-256 of
the session id, each only as long as a token of that session can be valid: the session's
absolute end (which bounds every access and refresh token issued to it) plus the clock skew
allowed between instances. The list therefore never grows beyond the sessions of the last
``portal_session_max_seconds``.
"""

from __future__ import annotations

import hashlib
import time

from gateway.auth.tokens import CLOCK_SKEW_SECONDS
from gateway.kv import KeyValueStore

_PREFIX = "revoked-session:"


def _key(sid: str) -> str:
    return _PREFIX + hashlib.sha256(sid.encode()).hexdigest()


class Revocations:
    def __init__(self, kv: KeyValueStore) -> None:
        self._kv = kv

    async def revoke_session(self, sid: str, *, until: float) -> None:
        """List ``sid`` until ``until`` (epoch seconds: no token of the session lives longer)."""
        ttl = until - time.time() + CLOCK_SKEW_SECONDS + 1
        if ttl > 0:
            await self._kv.set(_key(sid), b"1", ttl)

    async def is_revoked(self, sid: str) -> bool:
        return await self._kv.get(_key(sid)) is not None
