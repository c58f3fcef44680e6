"""KeyValueStore: Redis when ``GATEWAY_REDIS_URL`` is set, in-process otherwise; one contract.

docs/architecture.md section 2: Redis is optional; without it the same interfaces run
in-process with the same behaviour (not the same scale: an in-process store is per instance).
The contract is small on purpose, each operation being one atomic Redis command (or one MULTI):

* ``set_if_absent(key, ttl)``: true for the first caller only, until the key expires
  (single-use ``jti`` of client assertions, RFC 7523 section 3).
* ``incr_window(key, window)``: count one more event in the current fixed window of ``window``
  seconds and say when that window ends (per-client rate limits).
* ``incr(key, ttl)``: count one more event and keep the count ``ttl`` seconds after the last
  one (login failures per account and address, ``auth/throttle.py``).
* ``get`` / ``set`` / ``delete``: short-lived values with a time to live.

Windows are aligned on the wall clock (``time.time() // window``), so that every instance, and
both back ends, agree on where a window starts. Keys are namespaced with a prefix.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as redis

KEY_PREFIX = "gw:"
# Sweep expired entries of the in-process store at most this often (seconds).
_SWEEP_INTERVAL = 10.0


@dataclass(frozen=True)
class WindowCount:
    """Events counted so far in the current window, and seconds until the window ends."""

    count: int
    reset_after: float


class KeyValueStore(Protocol):
    async def set_if_absent(self, key: str, ttl: float) -> bool: ...

    async def incr_window(self, key: str, window: int) -> WindowCount: ...

    async def incr(self, key: str, ttl: float) -> int: ...

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: float) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def ping(self) -> bool: ...

    async def aclose(self) -> None: ...


def _window(now: float, window: int) -> tuple[int, float]:
    index = int(now // window)
    return index, (index + 1) * window - now


class MemoryStore:
    """The in-process store: a dict of (value, expiry) swept lazily. Single event loop, no locks:
    each method runs without awaiting, so it is atomic with respect to other coroutines."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[bytes, float]] = {}
        self._last_sweep = time.monotonic()

    def _sweep(self, now: float) -> None:
        if time.monotonic() - self._last_sweep < _SWEEP_INTERVAL:
            return
        self._last_sweep = time.monotonic()
        for key in [k for k, (_, expires) in self._items.items() if expires <= now]:
            del self._items[key]

    def _live(self, key: str, now: float) -> bytes | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[1] <= now:
            del self._items[key]
            return None
        return item[0]

    async def set_if_absent(self, key: str, ttl: float) -> bool:
        now = time.time()
        self._sweep(now)
        if self._live(key, now) is not None:
            return False
        self._items[key] = (b"1", now + ttl)
        return True

    async def incr_window(self, key: str, window: int) -> WindowCount:
        now = time.time()
        self._sweep(now)
        index, reset_after = _window(now, window)
        slot = f"{key}:{index}"
        current = self._live(slot, now)
        count = int(current or b"0") + 1
        self._items[slot] = (str(count).encode(), now + reset_after + 1)
        return WindowCount(count, reset_after)

    async def incr(self, key: str, ttl: float) -> int:
        now = time.time()
        self._sweep(now)
        count = int(self._live(key, now) or b"0") + 1
        self._items[key] = (str(count).encode(), now + ttl)
        return count

    async def get(self, key: str) -> bytes | None:
        return self._live(key, time.time())

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        now = time.time()
        self._sweep(now)
        self._items[key] = (value, now + ttl)

    async def delete(self, key: str) -> None:
        self._items.pop(key, None)

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class RedisStore:
    """The same contract on Redis (``redis.asyncio``): one round trip per operation."""

    def __init__(self, url: str, *, prefix: str = KEY_PREFIX) -> None:
        self._redis: redis.Redis = redis.Redis.from_url(url)
        self._prefix = prefix

    async def set_if_absent(self, key: str, ttl: float) -> bool:
        done = await self._redis.set(self._prefix + key, b"1", px=_millis(ttl), nx=True)
        return bool(done)

    async def incr_window(self, key: str, window: int) -> WindowCount:
        index, reset_after = _window(time.time(), window)
        slot = f"{self._prefix}{key}:{index}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(slot)
            pipe.pexpire(slot, _millis(reset_after + 1))
            count, _ = await pipe.execute()
        return WindowCount(int(count), reset_after)

    async def incr(self, key: str, ttl: float) -> int:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(self._prefix + key)
            pipe.pexpire(self._prefix + key, _millis(ttl))
            count, _ = await pipe.execute()
        return int(count)

    async def get(self, key: str) -> bytes | None:
        value = await self._redis.get(self._prefix + key)
        return value.encode() if isinstance(value, str) else value

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        await self._redis.set(self._prefix + key, value, px=_millis(ttl))

    async def delete(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)

    async def ping(self) -> bool:
        return bool(await self._redis.ping())

    async def aclose(self) -> None:
        await self._redis.aclose()


def _millis(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def create_store(redis_url: str | None) -> KeyValueStore:
    """Redis when configured, else the in-process store. Connecting is lazy (first command)."""
    if redis_url:
        return RedisStore(redis_url)
    return MemoryStore()
