"""Login throttling per (account, client address): wrong passwords slow down the address that sends
them, never the patient (OWASP ASVS V2.2.1).

A lock per account alone lets anyone who knows an SSIN lock its patient out. Here the failures
are counted per pair (SSIN typed, client address): after ``free_failures`` wrong passwords in a
row from one address, that address waits ``base_delay`` seconds before its next attempt for that
SSIN, then twice as long after each further failure, up to ``max_delay``. The same SSIN from
another address is not slowed down; a correct password (once the wait is over) clears the pair.
Failures are forgotten ``memory_seconds`` after the last one.

Unknown SSINs are counted exactly like known ones, so the delays say nothing about which SSINs
have an account. The counters live in the key-value store (every instance sees them with Redis)
under the keyring's keyed HMAC of SSIN and address: no SSIN or address in clear.

Spraying one password over many SSINs from one address is limited by the per-address budget
(``login_attempts_per_address``, ``login.py``).
"""

from __future__ import annotations

import math
import time

from gateway.kv import KeyValueStore
from gateway.storage.crypto import Keyring

_FAILURES = "login-failures:"
_DELAY = "login-delay:"


class LoginThrottle:
    def __init__(
        self,
        kv: KeyValueStore,
        keyring: Keyring,
        *,
        free_failures: int,
        base_delay: float,
        max_delay: float,
        memory_seconds: float,
    ) -> None:
        self._kv = kv
        self._keyring = keyring
        self.free_failures = free_failures
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.memory_seconds = memory_seconds

    def _pair(self, ssin: str, address: str) -> str:
        return self._keyring.search_hash("login-throttle", f"{ssin}\x1f{address}")

    def delay_after(self, failures: int) -> float:
        """Seconds to wait after ``failures`` wrong passwords in a row: none before
        ``free_failures``, then ``base_delay`` doubling each time, capped at ``max_delay``."""
        if failures < self.free_failures:
            return 0.0
        exponent = min(failures - self.free_failures, 62)  # 2**62 s is far past any cap
        return float(min(self.base_delay * 2**exponent, self.max_delay))

    async def wait(self, ssin: str, address: str) -> int:
        """Whole seconds this address must still wait before trying this SSIN again (0: none)."""
        until = await self._kv.get(_DELAY + self._pair(ssin, address))
        if until is None:
            return 0
        try:
            remaining = float(until) - time.time()
        except ValueError:
            return 0
        return max(0, math.ceil(remaining))

    async def failed(self, ssin: str, address: str) -> float:
        """Count a wrong password; returns the delay it starts (0 while failures are free)."""
        pair = self._pair(ssin, address)
        failures = await self._kv.incr(_FAILURES + pair, self.memory_seconds)
        delay = self.delay_after(failures)
        if delay > 0:
            await self._kv.set(_DELAY + pair, str(time.time() + delay).encode(), delay)
        return delay

    async def succeeded(self, ssin: str, address: str) -> None:
        pair = self._pair(ssin, address)
        await self._kv.delete(_FAILURES + pair)
        await self._kv.delete(_DELAY + pair)
