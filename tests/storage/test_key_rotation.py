"""Encryption key rotation at rest (issue 19, item 6): a second key becomes current for new writes
while old versions stay readable; ``reencrypt`` moves the old rows online, in batches, while the
API writes; afterwards the old key is no longer needed by any resource or signing key, and every
resource still reads and is still found by its keyed search hashes."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from cryptography.exceptions import InvalidTag
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import func, select

from fhir_profiles import systems
from gateway.app import create_app
from gateway.cli import main
from gateway.db import create_engine, session_factory
from gateway.settings import Settings, decode_key
from gateway.storage.crypto import (
    Keyring,
    UnknownKey,
    key_fingerprint,
    new_encryption_key,
    search_key_of,
)
from gateway.storage.keys import keyring_from
from gateway.storage.rekey import key_usage, reencrypt
from gateway.storage.store import ResourceStore, SearchColumns
from gateway.storage.tables import resource_versions
from tests.consents.factories import RX_URL, prescription
from tests.dispenses.factories import operation, parameters
from tests.fhir_profiles.factories import SSIN
from tests.fixtures.app import patient_token
from tests.fixtures.auth import BASE_URL, PHARMACY_NIHDI, Auth, DevPki
from tests.fixtures.fhir import rid_of

OLD, NEW = new_encryption_key(), new_encryption_key()


def rotated(settings: Settings, *, current: str = "new", keys: str | None = None) -> Settings:
    """``settings`` with the key set of a rotation: ``old`` (the first key) and ``new``."""
    assert settings.encryption_key is not None
    first = settings.encryption_key.get_secret_value()
    search = base64.b64encode(search_key_of(decode_key(first))).decode()
    return settings.model_validate(
        {
            **settings.model_dump(exclude={"encryption_key", "encryption_keys"}),
            "encryption_keys": keys or f"old:{first},new:{NEW}",
            "encryption_key_current": current,
            "search_key": search,
        }
    )


# -- settings and keyring ----------------------------------------------------------------------


def test_a_key_set_names_its_current_key_and_keeps_the_search_key() -> None:
    settings = Settings(
        encryption_keys=f"2025:{OLD}, 2026:{NEW}",
        encryption_key_current="2026",
        search_key=base64.urlsafe_b64encode(search_key_of(decode_key(OLD))).decode(),
    )
    keyring = keyring_from(settings)
    assert keyring.key_id == key_fingerprint(decode_key(NEW))
    assert set(keyring.key_ids) == {key_fingerprint(decode_key(k)) for k in (OLD, NEW)}
    # the search hashes are those the single old key wrote: searches keep finding old rows
    assert keyring.search_hash("ssin", SSIN) == Keyring(decode_key(OLD)).search_hash("ssin", SSIN)


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"encryption_keys": f"a:{OLD},b:{NEW}"}, "GATEWAY_ENCRYPTION_KEY_CURRENT is required"),
        (
            {"encryption_keys": f"a:{OLD},b:{NEW}", "encryption_key_current": "b"},
            "GATEWAY_SEARCH_KEY is required",
        ),
        ({"encryption_keys": f"a:{OLD}", "encryption_key_current": "c"}, "names no key"),
        ({"encryption_keys": f"a:{OLD}", "encryption_key": NEW}, "not both"),
        ({"encryption_keys": f"a:{OLD},a:{NEW}"}, "given twice"),
        ({"encryption_keys": OLD}, "expected label:key"),
        ({"encryption_keys": "a:c2hvcnQ="}, "32 bytes"),
    ],
)
def test_a_wrong_key_set_stops_the_start(environment: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message) as refused:
        Settings(**environment)  # type: ignore[arg-type]
    assert OLD not in str(refused.value)
    assert NEW not in str(refused.value)


def test_old_keys_open_what_they_sealed_and_new_writes_use_the_current() -> None:
    old, new = decode_key(OLD), decode_key(NEW)
    sealed_before = Keyring(old).encrypt(b"body", b"row")
    both = Keyring(new, previous=[old])
    assert both.decrypt(sealed_before, b"row", key_fingerprint(old)) == b"body"
    assert both.decrypt(sealed_before, b"row") == b"body"  # no key id: each key in turn
    with pytest.raises(InvalidTag):  # the current key alone does not open it
        Keyring(new).decrypt(both.encrypt(b"x", b"row"), b"row", key_fingerprint(old))
    assert Keyring(new).decrypt(both.encrypt(b"x", b"row"), b"row", both.key_id) == b"x"
    with pytest.raises(UnknownKey, match=key_fingerprint(old)):
        Keyring(new).decrypt(sealed_before, b"row", key_fingerprint(old))
    with pytest.raises(InvalidTag):  # bound to its row
        both.decrypt(both.reseal(sealed_before, b"row", key_fingerprint(old)), b"other")


# -- online re-encryption through the API --------------------------------------------------------


class Gateway:
    """One gateway instance (an app on a key set) and its callers."""

    def __init__(self, app: FastAPI, pki: DevPki) -> None:
        self.app, self.auth = app, Auth(app, pki)
        self.clients: list[httpx.AsyncClient] = []

    async def client(self, role: str, **kwargs: Any) -> httpx.AsyncClient:
        headers = {"accept": "application/fhir+json"}
        if role == "patient":
            headers["authorization"] = f"Bearer {await patient_token(self.app, SSIN)}"
        else:
            registered = await self.auth.register(role, kwargs.get("nihdi"))
            headers["authorization"] = f"Bearer {await self.auth.token(registered)}"
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url=BASE_URL, headers=headers
        )
        self.clients.append(client)
        return client

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()
        await self.app.state.kv.aclose()
        await self.app.state.engine.dispose()


@pytest.fixture
async def gateways(dev_pki: DevPki) -> AsyncIterator[list[Gateway]]:
    started: list[Gateway] = []
    yield started
    for gateway in started:
        await gateway.close()


async def start(settings: Settings, pki: DevPki, started: list[Gateway]) -> Gateway:
    gateway = Gateway(create_app(settings), pki)
    started.append(gateway)
    return gateway


async def reserve_and_release(patient: httpx.AsyncClient, rx_id: str) -> None:
    """Two new versions of an old prescription: its sealed rows are retired meanwhile."""
    path = f"MedicationRequest/{rx_id}"
    reserved = await operation(patient, f"{path}/$reserve", parameters(pharmacy=PHARMACY_NIHDI))
    assert reserved.status_code == 200, reserved.text
    released = await operation(patient, f"{path}/$release")
    assert released.status_code == 200, released.text


async def test_reencrypt_moves_old_rows_while_the_api_writes(
    settings: Settings, dev_pki: DevPki, gateways: list[Gateway]
) -> None:
    # Before: one key. Prescriptions and a signing key are sealed under it.
    before = await start(settings, dev_pki, gateways)
    prescriber = await before.client("prescriber")
    old_rx = [await prescription(prescriber) for _ in range(12)]
    old_id = keyring_from(settings).key_id

    # The rotation's steps: the new key deployed everywhere, then made current on one instance
    # while another still seals with the old one (a rolling restart), and re-encryption runs.
    known = await start(rotated(settings, current="old"), dev_pki, gateways)
    current = await start(rotated(settings), dev_pki, gateways)
    new_keyring = keyring_from(rotated(settings))
    writers = [await g.client("prescriber") for g in (known, current)]
    patient = await current.client("patient")
    moved_so_far: list[tuple[int, int]] = []
    engine = create_engine(settings.database_url, pool_size=1)  # the operator's process
    try:

        async def write(client: httpx.AsyncClient) -> list[dict[str, Any]]:
            return [await prescription(client) for _ in range(6)]

        async def update_old() -> None:
            for rx in old_rx[:4]:
                await reserve_and_release(patient, rx["id"])

        async def rekey() -> Any:
            return await reencrypt(
                session_factory(engine),
                new_keyring,
                batch=5,
                progress=lambda table, moved, total: moved_so_far.append((moved, total)),
            )

        written_a, written_b, _, _ = await asyncio.gather(
            write(writers[0]), write(writers[1]), update_old(), rekey()
        )
        # The instance still on the old key is stopped; a second run takes what it wrote last.
        await reencrypt(session_factory(engine), new_keyring)
        async with session_factory(engine)() as session:
            usage = await key_usage(session)
            versions = await session.scalar(select(func.count()).select_from(resource_versions))
    finally:
        await engine.dispose()

    assert moved_so_far[0] == (5, moved_so_far[0][1])  # progress, batch by batch
    assert moved_so_far[0][1] >= len(old_rx)
    assert usage["resource_versions"] == {new_keyring.key_id: versions}
    assert set(usage["signing_keys"]) == {new_keyring.key_id}
    assert old_id in usage["audit_events"]  # events keep their key: the chain commits to them

    # The old key retired: only the new one (and the unchanged search key) is configured.
    after = await start(rotated(settings, keys=f"new:{NEW}"), dev_pki, gateways)
    reader = await after.client("prescriber")  # a token signed with the resealed signing key
    pharmacy = await after.client("pharmacist", nihdi=PHARMACY_NIHDI)
    for rx in [*old_rx, *written_a, *written_b]:
        first = await reader.get(f"{RX_URL}/{rx['id']}/_history/1")
        assert first.status_code == 200, first.text
        assert first.json() == rx
        found = await pharmacy.get(RX_URL, params={"identifier": f"{systems.RID}|{rid_of(rx)}"})
        assert [e["resource"]["id"] for e in found.json()["entry"]] == [rx["id"]]
    for rx in old_rx[:4]:
        assert (await reader.get(f"{RX_URL}/{rx['id']}")).json()["meta"]["versionId"] == "3"
    own = await (await after.client("patient")).get(
        RX_URL, params={"patient:identifier": f"{systems.SSIN}|{SSIN}", "_count": "100"}
    )
    assert own.json()["total"] == len(old_rx) + len(written_a) + len(written_b)


# -- the operator's commands ---------------------------------------------------------------------


async def seal(database_url: str, keyring: Keyring, count: int) -> None:
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            store = ResourceStore(session, keyring)
            for n in range(count):
                await store.create("Basic", {"resourceType": "Basic", "n": n}, SearchColumns())
            await session.commit()
    finally:
        await engine.dispose()


def rows(versions: int) -> str:
    """Rows per table of a key as ``gateway keys status`` prints them (no signing key, no audit)."""
    return f"resource_versions {versions}, signing_keys 0, audit_events 0, audit_pending 0"


async def test_the_commands_show_progress_and_say_when_the_old_key_may_go(
    settings: Settings,
    gateway_env: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await seal(settings.database_url, keyring_from(settings), 7)
    first = settings.key_bytes()
    monkeypatch.delenv("GATEWAY_ENCRYPTION_KEY")  # the single key becomes one of two
    monkeypatch.setenv(
        "GATEWAY_ENCRYPTION_KEYS", f"old:{base64.b64encode(first).decode()},new:{NEW}"
    )
    monkeypatch.setenv("GATEWAY_ENCRYPTION_KEY_CURRENT", "new")
    monkeypatch.setenv("GATEWAY_SEARCH_KEY", base64.b64encode(search_key_of(first)).decode())

    assert await asyncio.to_thread(main, ["keys", "status"]) == 0
    old_id, new_id = key_fingerprint(first), key_fingerprint(decode_key(NEW))
    assert capsys.readouterr().out.splitlines() == [
        f"old (id {old_id}): {rows(7)} - still needed",
        f"new (id {new_id}): {rows(0)} - current",
    ]

    assert await asyncio.to_thread(main, ["keys", "reencrypt", "--batch", "3"]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        "resource_versions: 3/7 resealed",
        "resource_versions: 6/7 resealed",
        "resource_versions: 7/7 resealed",
    ]
    assert "resource_versions: 7 resealed, 0 still under another key" in out
    assert (f"old (id {old_id}): {rows(0)} - no row uses it: may be retired") in out.splitlines()

    # run again: nothing left to do
    assert await asyncio.to_thread(main, ["keys", "reencrypt"]) == 0
    assert "resource_versions: 0 resealed, 0 still under another key" in capsys.readouterr().out


async def test_search_key_prints_the_hmac_key_of_the_single_key(
    settings: Settings, gateway_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await asyncio.to_thread(main, ["keys", "search-key"]) == 0
    printed = decode_key(capsys.readouterr().out.strip())
    assert printed == search_key_of(settings.key_bytes())
