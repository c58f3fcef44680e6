"""Signing-key rotation as clients see it (JWKS, old tokens), and per-client rate limits (429)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI

from gateway.app import create_app
from gateway.auth import tokens
from gateway.settings import Settings
from tests.fixtures.auth import Auth, DevPki

URL = "/fhir/MedicationRequest"


async def jwks_kids(auth: Auth) -> list[str]:
    async with auth.http() as http:
        response = await http.get("/oauth/jwks")
    assert response.headers["cache-control"].startswith("public")
    return [key["kid"] for key in response.json()["keys"]]


async def search(auth: Auth, token: str) -> int:
    async with auth.http(authorization=f"Bearer {token}") as http:
        return (await http.get(URL, params={"status": "active"})).status_code


async def test_rotation_publishes_both_keys_and_old_tokens_stay_valid(auth: Auth) -> None:
    client = await auth.register("prescriber")
    old_token = await auth.token(client)
    keys: tokens.KeyStore = auth.app.state.auth.keys
    old_kid = (await keys.signing_key()).kid
    new_kid = await keys.rotate()
    assert new_kid != old_kid
    assert set(await jwks_kids(auth)) == {old_kid, new_kid}
    new_token = await auth.token(client)
    assert new_token.split(".")[0] != old_token.split(".")[0]  # another kid in the header
    assert (await keys.signing_key()).kid == new_kid
    assert await search(auth, old_token) == 200
    assert await search(auth, new_token) == 200
    described = {k["kid"]: k["state"] for k in await keys.describe()}
    assert described == {old_kid: "retired, published", new_kid: "signing"}


async def test_a_key_rotated_by_another_instance_is_picked_up(
    auth: Auth, settings: Settings
) -> None:
    client = await auth.register("prescriber")
    await auth.token(client)  # this instance caches the first key
    other = create_app(settings)  # a second instance on the same database
    try:
        await other.state.auth.keys.rotate()
    finally:
        await other.state.engine.dispose()
    other_instance_token = await Auth(other, auth.pki).token(client)
    # an unknown kid makes this instance reload its keys at once
    assert await search(auth, other_instance_token) == 200


@pytest.fixture
async def limited_app(settings: Settings) -> AsyncIterator[FastAPI]:
    limited = settings.model_copy(
        update={"rate_limit_per_minute": 3, "token_rate_limit_per_minute": 2}
    )
    application = create_app(limited)
    yield application
    await application.state.kv.aclose()
    await application.state.engine.dispose()


async def test_fhir_rate_limit_is_429_with_retry_after(
    limited_app: FastAPI, dev_pki: DevPki
) -> None:
    auth = Auth(limited_app, dev_pki)
    client = await auth.register("prescriber")
    other = await auth.register("prescriber")
    token, other_token = await auth.token(client), await auth.token(other)
    statuses = [await search(auth, token) for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    async with auth.http(authorization=f"Bearer {token}") as http:
        response = await http.get(URL, params={"status": "active"})
    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert response.json()["issue"][0]["code"] == "throttled"
    assert await search(auth, other_token) == 200  # per client


async def test_token_rate_limit_is_429_with_retry_after(
    limited_app: FastAPI, dev_pki: DevPki
) -> None:
    auth = Auth(limited_app, dev_pki)
    client = await auth.register("pharmacist")
    responses: list[Any] = [await auth.token_response(client) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert 1 <= int(responses[-1].headers["retry-after"]) <= 60
    assert responses[-1].json()["error"] == "temporarily_unavailable"
