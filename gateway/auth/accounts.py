"""Patient accounts behind the gateway's own login page (the stand-in for FAS/CSAM, PO-1).

A real deployment authenticates patients at the national identity service (eID, itsme) and the
gateway only receives a verified SSIN (docs/portal.md, "A real identity provider"). Until then a
patient logs in with the SSIN and a password set by ``gateway demo`` or
``gateway patients set-password``.

- The SSIN is stored only as the keyring's keyed HMAC (``search_hash("ssin", ...)``).
- The password is hashed with scrypt (RFC 7914; stdlib ``hashlib.scrypt``), parameters and salt
  kept in the stored string so that they can be raised later without breaking old hashes.
- Brute force is slowed per (account, client address) in the key-value store (``throttle.py``),
  never by locking the account itself (anyone knowing an SSIN could lock its patient out). An
  unknown SSIN costs the same hash as a known one, so timing does not tell which SSINs exist.
  (Migration 0008 dropped the lockout columns of 0006.)

Hashing takes tens of milliseconds of CPU: it runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import secrets
from datetime import UTC, datetime

import anyio
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.storage.crypto import Keyring
from gateway.storage.tables import patient_accounts

# scrypt cost: N=2^14, r=8, p=1 (16 MiB, the RFC 7914 interactive-login example); 16-byte salt.
_N, _R, _P = 2**14, 8, 1
_SALT_BYTES = 16
_HASH_BYTES = 32
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256
# A hash of a throw-away password: verified against when the SSIN has no account.
_DUMMY = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


class PasswordRejected(ValueError):
    """A new password that does not meet the minimum rules (the message is safe to show)."""


class LoginResult(enum.Enum):
    OK = "ok"
    BAD_CREDENTIALS = "bad-credentials"  # unknown SSIN or wrong password: one answer for both


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=_N, r=_R, p=_P, maxmem=64 * 1024 * 1024, dklen=_HASH_BYTES
    )
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=64 * 1024 * 1024,
            dklen=len(expected) or _HASH_BYTES,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordRejected(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PasswordRejected(f"a password has at most {MAX_PASSWORD_LENGTH} characters")


class PatientAccounts:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], keyring: Keyring) -> None:
        self._sessions = sessions
        self._keyring = keyring

    def _key(self, ssin: str) -> str:
        return self._keyring.search_hash("ssin", ssin)

    async def set_password(self, ssin: str, password: str, *, now: datetime | None = None) -> bool:
        """Create the account or replace its password. True when created."""
        check_new_password(password)
        hashed = await anyio.to_thread.run_sync(hash_password, password)
        moment = now or datetime.now(UTC)
        key = self._key(ssin)
        async with self._sessions() as session:
            found = await session.scalar(
                select(patient_accounts.c.ssin_hmac).where(patient_accounts.c.ssin_hmac == key)
            )
            if found is None:
                await session.execute(
                    insert(patient_accounts).values(
                        ssin_hmac=key,
                        password_hash=hashed,
                        created_at=moment,
                        updated_at=moment,
                    )
                )
            else:
                await session.execute(
                    update(patient_accounts)
                    .where(patient_accounts.c.ssin_hmac == key)
                    .values(
                        password_hash=hashed,
                        updated_at=moment,
                    )
                )
            await session.commit()
        return found is None

    async def authenticate(
        self, ssin: str, password: str, *, now: datetime | None = None
    ) -> LoginResult:
        moment = now or datetime.now(UTC)
        key = self._key(ssin)
        async with self._sessions() as session:
            stored = await session.scalar(
                select(patient_accounts.c.password_hash).where(patient_accounts.c.ssin_hmac == key)
            )
        # The session is closed while hashing: scrypt takes tens of milliseconds and the SQLite
        # default has one pooled connection.
        matches = await anyio.to_thread.run_sync(check_password, password, stored or _DUMMY)
        if stored is None or not matches:
            return LoginResult.BAD_CREDENTIALS
        async with self._sessions() as session:
            await session.execute(
                update(patient_accounts)
                .where(patient_accounts.c.ssin_hmac == key)
                .values(last_login_at=moment)
            )
            await session.commit()
        return LoginResult.OK

    async def exists(self, ssin: str) -> bool:
        async with self._sessions() as session:
            found = await session.scalar(
                select(patient_accounts.c.ssin_hmac).where(
                    patient_accounts.c.ssin_hmac == self._key(ssin)
                )
            )
        return found is not None
