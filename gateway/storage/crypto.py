"""Encryption at rest (AES-GCM) and keyed search hashes (HMAC-SHA256), both from one master key.

Two sub-keys are derived with HKDF so that the search hash never shares a key with the cipher.
The associated data binds each ciphertext to its row (type/id/version): a body copied onto another
row fails to decrypt instead of silently showing the wrong patient's data.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_NONCE_BYTES = 12


def new_encryption_key() -> str:
    """A fresh master key as ``GATEWAY_ENCRYPTION_KEY`` takes it (32 random bytes, base64url)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(master)


class Keyring:
    """Holds the derived keys; ``key_id`` is stored beside each body so keys can be rotated later."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise ValueError("master key must be 32 bytes")
        self._aead = AESGCM(_derive(master_key, b"ehealth-gateway/body-encryption/v1"))
        self._hmac_key = _derive(master_key, b"ehealth-gateway/search-hmac/v1")
        self.key_id = hashlib.sha256(b"key-id" + master_key).hexdigest()[:16]

    def encrypt(self, plaintext: bytes, associated: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, associated)

    def decrypt(self, blob: bytes, associated: bytes) -> bytes:
        return self._aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], associated)

    def search_hash(self, kind: str, value: str) -> str:
        """Keyed hash for an equality search column; ``kind`` separates the namespaces."""
        message = f"{kind}\x1f{value}".encode()
        return hmac.new(self._hmac_key, message, hashlib.sha256).hexdigest()


def associated_data(resource_type: str, logical_id: str, version_id: int) -> bytes:
    return f"{resource_type}/{logical_id}/_history/{version_id}".encode()
