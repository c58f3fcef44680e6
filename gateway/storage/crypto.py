"""Encryption at rest (AES-GCM) and keyed search hashes (HMAC-SHA256).

A ``Keyring`` holds one *current* encryption key, which seals every new body, and any number of
older ones, which only open what they sealed: each stored body names its key by ``key_id`` (a
column beside it), so a key can be rotated without rewriting the database at once
(``gateway keys reencrypt`` moves old rows later, ``gateway.storage.rekey``). A key id is a
fingerprint of the key itself, never a name an operator chose: two different keys cannot share
an id, and the ids written before rotation existed stay valid.

The search hashes do not rotate with the encryption key. They are equality search keys (a
patient's SSIN, a business identifier, a login account): a new HMAC key would have to recompute
every such column from clear values, and some exist nowhere else (a patient account holds only
the hash of its SSIN; the audit chain commits to its rows' hashes). So the HMAC key is its own
setting once there are several encryption keys (``GATEWAY_SEARCH_KEY``); with a single key it is
derived from that key, as it always was. Both sub-keys come from HKDF with distinct purposes, so
the search hash never shares a key with the cipher.

The associated data binds each ciphertext to its row (type/id/version): a body copied onto another
row fails to decrypt instead of silently showing the wrong patient's data.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_NONCE_BYTES = 12
_BODY_PURPOSE = b"ehealth-gateway/body-encryption/v1"
_SEARCH_PURPOSE = b"ehealth-gateway/search-hmac/v1"


class UnknownKey(InvalidTag):
    """A stored body names a key id the keyring does not hold (a retired or missing key): it
    cannot be opened, as with a wrong key (``InvalidTag``), and the message names the id."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"no configured encryption key has id {key_id}")
        self.key_id = key_id


def new_encryption_key() -> str:
    """A fresh master key as ``GATEWAY_ENCRYPTION_KEY`` takes it (32 random bytes, base64url)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(master)


def _checked(master_key: bytes) -> bytes:
    if len(master_key) != 32:
        raise ValueError("master key must be 32 bytes")
    return master_key


def key_fingerprint(master_key: bytes) -> str:
    """The id stored beside what ``master_key`` encrypts (16 hex digits; reveals nothing of it)."""
    return hashlib.sha256(b"key-id" + _checked(master_key)).hexdigest()[:16]


def search_key_of(master_key: bytes) -> bytes:
    """The HMAC key the search columns were written with while ``master_key`` was the only key:
    the value ``GATEWAY_SEARCH_KEY`` takes before a second encryption key is added."""
    return _derive(_checked(master_key), _SEARCH_PURPOSE)


class Keyring:
    """The current key (``key_id``), the older keys that still decrypt, and the search HMAC key."""

    def __init__(
        self,
        master_key: bytes,
        *,
        previous: Iterable[bytes] = (),
        search_key: bytes | None = None,
    ) -> None:
        self.key_id = key_fingerprint(master_key)
        self._ciphers = {self.key_id: AESGCM(_derive(master_key, _BODY_PURPOSE))}
        for older in previous:
            self._ciphers.setdefault(key_fingerprint(older), AESGCM(_derive(older, _BODY_PURPOSE)))
        if search_key is not None and len(search_key) != 32:
            raise ValueError("search key must be 32 bytes")
        self._hmac_key = search_key if search_key is not None else search_key_of(master_key)

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every key id this keyring decrypts, the current one first."""
        return tuple(self._ciphers)

    def encrypt(self, plaintext: bytes, associated: bytes) -> bytes:
        """Seal under the current key (store ``key_id`` beside the result)."""
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._ciphers[self.key_id].encrypt(nonce, plaintext, associated)

    def decrypt(self, blob: bytes, associated: bytes, key_id: str | None = None) -> bytes:
        """Open ``blob`` with the key named ``key_id``; without one (a value that does not record
        its key, such as a short-lived sealed code), with each key in turn, the current first."""
        nonce, sealed = blob[:_NONCE_BYTES], blob[_NONCE_BYTES:]
        if key_id is not None:
            cipher = self._ciphers.get(key_id)
            if cipher is None:
                raise UnknownKey(key_id)
            return cipher.decrypt(nonce, sealed, associated)
        for cipher in self._ciphers.values():
            try:
                return cipher.decrypt(nonce, sealed, associated)
            except InvalidTag:
                continue
        raise InvalidTag()

    def reseal(self, blob: bytes, associated: bytes, key_id: str) -> bytes:
        """``blob`` (sealed under ``key_id``) sealed again under the current key."""
        return self.encrypt(self.decrypt(blob, associated, key_id), associated)

    def search_hash(self, kind: str, value: str) -> str:
        """Keyed hash for an equality search column; ``kind`` separates the namespaces."""
        message = f"{kind}\x1f{value}".encode()
        return hmac.new(self._hmac_key, message, hashlib.sha256).hexdigest()


def associated_data(resource_type: str, logical_id: str, version_id: int) -> bytes:
    return f"{resource_type}/{logical_id}/_history/{version_id}".encode()


def signing_key_associated(kid: str) -> bytes:
    """Associated data of a token-signing key's private half: copied onto another row, it fails."""
    return f"signing_keys/{kid}".encode()
