"""The verified-token cache (gateway/auth/tokens.py ``VerifiedTokens``, issue 18): a token's
signature is checked once, yet a remembered token is refused as soon as it expires, its key is
withdrawn, its client is revoked, or it is presented for another audience; the cache is bounded."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from joserfc import jws

from gateway.auth import tokens
from tests.auth.test_resource_server import assert_401, get_with, own_token, valid_claims
from tests.fixtures.auth import Auth


def count_signature_checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = jws.validate_compact

    def counted(*args: Any, **kwargs: Any) -> bool:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(jws, "validate_compact", counted)  # as tokens.py calls it
    return calls


async def test_a_token_is_verified_once_then_remembered(
    auth: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = await auth.token(await auth.register("prescriber"))
    calls = count_signature_checks(monkeypatch)
    for _ in range(3):
        assert (await get_with(auth, token)).status_code == 200
    assert len(calls) == 1


async def test_a_remembered_token_is_refused_once_it_expires(
    auth: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await auth.register("prescriber")
    key = await auth.app.state.auth.keys.signing_key()
    issued = int(time.time())
    token = await own_token(
        auth, valid_claims(client, iat=issued, exp=issued + 60), key.private, key.kid
    )
    assert (await get_with(auth, token)).status_code == 200
    # Past exp by more than the clock skew allowed: the cached verdict no longer holds.
    later = issued + 60 + tokens.CLOCK_SKEW_SECONDS
    monkeypatch.setattr(time, "time", lambda: float(later))
    assert "expired" in assert_401(await get_with(auth, token))
    # ... and within the skew it was still good (joserfc's rule: exp <= now - leeway).
    monkeypatch.setattr(time, "time", lambda: float(later - 1))
    assert (await get_with(auth, token)).status_code == 200


async def test_a_remembered_token_is_checked_again_for_another_audience(auth: Auth) -> None:
    token = await auth.token(await auth.register("prescriber"))
    assert (await get_with(auth, token)).status_code == 200
    # The same token sent to another base URL (so another issuer and FHIR audience).
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=auth.app),
        base_url="http://elsewhere.test",
        headers={"authorization": f"Bearer {token}", "accept": "application/fhir+json"},
    ) as http:
        response = await http.get("/fhir/MedicationRequest", params={"status": "active"})
    assert_401(response)


async def test_a_token_that_failed_is_not_remembered(auth: Auth) -> None:
    client = await auth.register("prescriber")
    key = await auth.app.state.auth.keys.signing_key()
    token = await own_token(
        auth, valid_claims(client, aud="https://other.example/fhir"), key.private, key.kid
    )
    for _ in range(2):
        assert_401(await get_with(auth, token))
    assert len(auth.app.state.auth.verified) == 0


def test_the_cache_is_bounded_and_forgets_the_oldest() -> None:
    cache = tokens.VerifiedTokens(max_entries=2)
    claims = tokens.AccessClaims("c", "prescriber", None, "", exp=0)
    entries = {name: tokens.VerifiedTokens.key(name) for name in ("a", "b", "c")}
    for name, key in entries.items():
        cache.put(key, tokens._Verified("iss", "aud", "kid", 0.0, claims))
        assert cache.get(key, "iss", "aud") is not None, name
    assert len(cache) == 2
    assert cache.get(entries["a"], "iss", "aud") is None  # the oldest made room
    assert cache.get(entries["c"], "iss", "aud") is not None
