"""ResourceStore over a real database: encryption at rest, keyed search hashes, versions, CAS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.cli import new_encryption_key
from gateway.db import create_engine, session_factory
from gateway.errors import PreconditionFailed
from gateway.settings import decode_key
from gateway.storage.crypto import Keyring
from gateway.storage.store import Criteria, IdentifierTaken, ResourceStore, SearchColumns
from gateway.storage.tables import resource_identifiers, resource_versions

SSIN = "85073003328"
BODY = {"resourceType": "Basic", "code": {"text": "Amoxicilline for Jan Peeters"}}


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url)
    yield eng
    await eng.dispose()


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(decode_key(new_encryption_key()))


async def write(engine: AsyncEngine, keyring: Keyring, **columns: object) -> str:
    async with session_factory(engine)() as session:
        stored = await ResourceStore(session, keyring).create(
            "Basic",
            dict(BODY),
            SearchColumns(patient_ssin=SSIN, status="active", **columns),  # type: ignore[arg-type]
        )
        await session.commit()
    return stored.logical_id


async def test_bodies_and_ssins_are_never_stored_in_clear(
    engine: AsyncEngine, keyring: Keyring
) -> None:
    await write(engine, keyring, identifiers=[("urn:example", "rx-1")])
    async with engine.connect() as conn:
        rows = (await conn.execute(select(resource_versions))).mappings().all()
        tokens = (await conn.execute(select(resource_identifiers))).mappings().all()
    dump = repr(rows) + repr(tokens)
    for secret in (SSIN, "Jan Peeters", "Amoxicilline", "rx-1"):
        assert secret not in dump
    assert rows[0]["patient_hmac"] == keyring.search_hash("ssin", SSIN)


async def test_a_body_moved_to_another_row_does_not_decrypt(
    engine: AsyncEngine, keyring: Keyring
) -> None:
    first = await write(engine, keyring)
    second = await write(engine, keyring)
    async with engine.begin() as conn:
        blob = await conn.scalar(
            select(resource_versions.c.body).where(resource_versions.c.logical_id == first)
        )
        await conn.execute(
            update(resource_versions)
            .where(resource_versions.c.logical_id == second)
            .values(body=blob)
        )
    async with session_factory(engine)() as session:
        store = ResourceStore(session, keyring)
        assert (await store.read("Basic", first)).json()["code"] == BODY["code"]
        with pytest.raises(InvalidTag):
            await store.read("Basic", second)


async def test_another_key_cannot_read_or_find(engine: AsyncEngine, keyring: Keyring) -> None:
    logical_id = await write(engine, keyring)
    other = Keyring(decode_key(new_encryption_key()))
    async with session_factory(engine)() as session:
        store = ResourceStore(session, other)
        assert (await store.search("Basic", Criteria(patient_ssin=SSIN), count=10)).total == 0
        with pytest.raises(InvalidTag):
            await store.read("Basic", logical_id)


async def test_identifiers_are_unique_per_type(engine: AsyncEngine, keyring: Keyring) -> None:
    await write(engine, keyring, identifiers=[("urn:example", "rx-1")])
    with pytest.raises(IdentifierTaken):
        await write(engine, keyring, identifiers=[("urn:example", "rx-1")])


async def test_update_is_compare_and_set_on_the_version(
    engine: AsyncEngine, keyring: Keyring
) -> None:
    """Two writers racing from version 1: exactly one makes version 2, the other gets 412."""
    logical_id = await write(engine, keyring)

    async def update_from_v1(label: str) -> str:
        async with session_factory(engine)() as session:
            store = ResourceStore(session, keyring)
            try:
                await store.update(
                    "Basic",
                    logical_id,
                    {**BODY, "id": logical_id, "text": label},
                    SearchColumns(),
                    expected_version=1,
                )
                await session.commit()
                return "won"
            except PreconditionFailed:
                await session.rollback()
                return "lost"

    results = await asyncio.gather(update_from_v1("a"), update_from_v1("b"))
    assert sorted(results) == ["lost", "won"]
    async with session_factory(engine)() as session:
        store = ResourceStore(session, keyring)
        history = await store.history("Basic", logical_id)
        assert [v.version_id for v in history] == [2, 1]
        assert (await store.read("Basic", logical_id)).version_id == 2
        current = await session.scalar(
            text("SELECT count(*) FROM resource_versions WHERE logical_id = :id AND is_current"),
            {"id": logical_id},
        )
        assert current == 1


async def test_timestamps_come_back_in_utc(engine: AsyncEngine, keyring: Keyring) -> None:
    logical_id = await write(engine, keyring)
    async with session_factory(engine)() as session:
        stored = await ResourceStore(session, keyring).read("Basic", logical_id)
    assert stored.last_updated.utcoffset() == UTC.utcoffset(datetime.now(UTC))
