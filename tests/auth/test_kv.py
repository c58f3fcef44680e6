"""The KeyValueStore contract, run on both back ends (tests/auth/conftest.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.kv import KeyValueStore, create_store


@pytest.fixture
async def kv(redis_url: str | None) -> AsyncIterator[KeyValueStore]:
    store = create_store(redis_url)
    yield store
    await store.aclose()


async def test_set_if_absent_is_true_once(kv: KeyValueStore) -> None:
    assert await kv.set_if_absent("jti:a", 60) is True
    assert await kv.set_if_absent("jti:a", 60) is False
    assert await kv.set_if_absent("jti:b", 60) is True


async def test_set_if_absent_is_true_again_after_expiry(kv: KeyValueStore) -> None:
    assert await kv.set_if_absent("jti:short", 0.05)
    await asyncio.sleep(0.12)
    assert await kv.set_if_absent("jti:short", 60)


async def test_concurrent_set_if_absent_has_one_winner(kv: KeyValueStore) -> None:
    results = await asyncio.gather(*(kv.set_if_absent("jti:race", 60) for _ in range(20)))
    assert results.count(True) == 1


async def test_incr_window_counts_within_a_window(kv: KeyValueStore) -> None:
    counts = [await kv.incr_window("rl:x", 60) for _ in range(3)]
    assert [c.count for c in counts] == [1, 2, 3]
    assert all(0 < c.reset_after <= 60 for c in counts)
    assert (await kv.incr_window("rl:y", 60)).count == 1


async def test_incr_window_starts_over_in_the_next_window(kv: KeyValueStore) -> None:
    await kv.incr_window("rl:z", 1)
    first = await kv.incr_window("rl:z", 1)
    await asyncio.sleep(first.reset_after + 0.05)
    assert (await kv.incr_window("rl:z", 1)).count == 1


async def test_get_set_delete(kv: KeyValueStore) -> None:
    assert await kv.get("k") is None
    await kv.set("k", b"value", 60)
    assert await kv.get("k") == b"value"
    await kv.delete("k")
    assert await kv.get("k") is None
    await kv.set("gone", b"x", 0.05)
    await asyncio.sleep(0.12)
    assert await kv.get("gone") is None


async def test_ping(kv: KeyValueStore) -> None:
    assert await kv.ping()


async def test_incr_counts_and_forgets_after_the_last_event(kv: KeyValueStore) -> None:
    assert [await kv.incr("login-failures:x", 60) for _ in range(3)] == [1, 2, 3]
    assert await kv.incr("login-failures:y", 60) == 1  # counters are per key
    assert await kv.incr("login-failures:short", 0.05) == 1
    await asyncio.sleep(0.12)
    assert await kv.incr("login-failures:short", 60) == 1


async def test_concurrent_incr_loses_no_event(kv: KeyValueStore) -> None:
    await asyncio.gather(*(kv.incr("login-failures:race", 60) for _ in range(20)))
    assert await kv.incr("login-failures:race", 60) == 21
