"""The keyring a process builds from its settings (``GATEWAY_ENCRYPTION_KEY`` or
``GATEWAY_ENCRYPTION_KEYS`` with ``..._CURRENT``, and ``GATEWAY_SEARCH_KEY``)."""

from __future__ import annotations

from gateway.settings import Settings
from gateway.storage.crypto import Keyring, key_fingerprint


def keyring_from(settings: Settings) -> Keyring:
    """The current key seals, every configured key opens; the search key as configured."""
    keys, current = settings.encryption_key_set()
    older = [key for label, key in keys.items() if label != current]
    return Keyring(keys[current], previous=older, search_key=settings.search_key_bytes())


def key_labels(settings: Settings) -> dict[str, str]:
    """Stored key id -> the operator's label for it."""
    keys, _ = settings.encryption_key_set()
    return {key_fingerprint(key): label for label, key in keys.items()}
