"""Limits on slow and on many clients (gateway/limits.py, docs/operations.md), over the ASGI
interface: a body that stalls after its first chunk, requests held open while others arrive.

The server's own limits (header size, the deadline on a real socket) are in
``test_limits_server.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from gateway.app import create_app
from gateway.settings import Settings
from tests.fixtures.auth import BASE_URL, PRESCRIBER_NIHDI, Auth, DevPki

# Generous: it only keeps a broken deadline from hanging the suite; nothing is timed.
HANG_GUARD_SECONDS = 20


@pytest.fixture
async def limited_app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(
        settings.model_copy(update={"body_timeout_seconds": 0.5, "max_in_flight": 2})
    )
    yield application
    await application.state.kv.aclose()
    await application.state.engine.dispose()


class StalledRequest:
    """One HTTP request at the ASGI interface whose body stops after ``first_chunk`` until
    ``release()``; what the app sends back is collected in ``sent``."""

    def __init__(
        self, app: FastAPI, path: str, headers: dict[str, str], first_chunk: bytes
    ) -> None:
        self.app = app
        self.path = path
        self.headers = headers
        self.first_chunk = first_chunk
        self.reading = asyncio.Event()  # the app has started to read the body
        self.released = asyncio.Event()
        self.rest = b""
        self.sent: list[dict[str, Any]] = []
        self._chunks = 0

    async def _receive(self) -> dict[str, Any]:
        self._chunks += 1
        if self._chunks == 1:
            self.reading.set()
            return {"type": "http.request", "body": self.first_chunk, "more_body": True}
        if self._chunks == 2:
            await self.released.wait()  # the stalled client
            return {"type": "http.request", "body": self.rest, "more_body": False}
        await asyncio.Event().wait()  # after the body: no disconnect until the test ends
        raise AssertionError("unreachable")

    async def _send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    def release(self, rest: bytes) -> None:
        self.rest = rest
        self.released.set()

    async def run(self) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "server": ("gateway.test", 80),
            "client": ("192.0.2.10", 50000),
            "root_path": "",
            "path": self.path,
            "raw_path": self.path.encode(),
            "query_string": b"",
            "headers": [(k.lower().encode(), v.encode()) for k, v in self.headers.items()],
        }
        await asyncio.wait_for(self.app(scope, self._receive, self._send), HANG_GUARD_SECONDS)

    def responses(self) -> list[dict[str, Any]]:
        return [m for m in self.sent if m["type"] == "http.response.start"]

    def header(self, name: str) -> str | None:
        (start,) = self.responses()
        for key, value in start["headers"]:
            if key.decode().lower() == name:
                return str(value.decode())
        return None

    def body(self) -> dict[str, Any]:
        data = b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")
        parsed: dict[str, Any] = orjson.loads(data)
        return parsed


async def prescriber_token(app: FastAPI, dev_pki: DevPki) -> str:
    auth = Auth(app, dev_pki)
    return await auth.token(await auth.register("prescriber", PRESCRIBER_NIHDI))


FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("door", "path", "content_type"),
    [
        ("fhir", "/fhir/MedicationRequest", "application/fhir+json"),
        ("token endpoint", "/oauth/token", FORM),
        ("login page", "/oauth/authorize", FORM),
        ("portal form", "/portal/language", FORM),
    ],
)
async def test_sec_slow_body_is_408(
    limited_app: FastAPI, dev_pki: DevPki, door: str, path: str, content_type: str
) -> None:
    headers = {"content-type": content_type, "content-length": "4000", "host": "gateway.test"}
    if door == "fhir":
        headers["authorization"] = f"Bearer {await prescriber_token(limited_app, dev_pki)}"
    stalled = StalledRequest(limited_app, path, headers, first_chunk=b'{"resourceType": ')
    await stalled.run()  # returns although the client never sends the rest

    (start,) = stalled.responses()  # the 408 only: the route's own answer was dropped
    assert start["status"] == 408
    assert stalled.header("connection") == "close"
    assert stalled.header("content-type") == "application/fhir+json; charset=utf-8"
    assert stalled.header("x-request-id")
    outcome = stalled.body()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "timeout"
    assert "0.5 seconds" in outcome["issue"][0]["diagnostics"]


async def test_sec_body_within_the_deadline_is_read(limited_app: FastAPI) -> None:
    """The deadline is on the whole body, not on each chunk: a body that arrives in two parts
    in time is served as usual (here: the token endpoint's refusal of a bad grant)."""
    headers = {"content-type": FORM, "content-length": "24", "host": "gateway.test"}
    stalled = StalledRequest(limited_app, "/oauth/token", headers, first_chunk=b"grant_type=")
    task = asyncio.create_task(stalled.run())
    await stalled.reading.wait()
    stalled.release(b"no-such-grant")
    await task
    (start,) = stalled.responses()
    assert start["status"] == 400
    assert b"unsupported_grant_type" in b"".join(m.get("body", b"") for m in stalled.sent)


async def test_sec_in_flight_bound_is_503_with_retry_after(limited_app: FastAPI) -> None:
    settings = limited_app.state.settings.model_copy(update={"body_timeout_seconds": 60})
    application = create_app(settings)  # a deadline far away: the held requests stay in flight
    try:
        headers = {"content-type": FORM, "content-length": "24", "host": "gateway.test"}
        held = [
            StalledRequest(application, "/oauth/token", headers, first_chunk=b"grant_type=")
            for _ in range(settings.max_in_flight)
        ]
        tasks = [asyncio.create_task(request.run()) for request in held]
        for request in held:
            await request.reading.wait()

        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url=BASE_URL
        ) as client:
            busy = await client.get("/fhir/metadata")
            assert busy.status_code == 503
            assert busy.headers["retry-after"].isdigit()
            assert busy.json()["resourceType"] == "OperationOutcome"
            assert busy.json()["issue"][0]["code"] == "transient"
            # The balancer's probes still reach a busy instance.
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/readyz")).status_code == 200

            for request in held:
                request.release(b"no-such-grant")
            await asyncio.gather(*tasks)
            assert [r.responses()[0]["status"] for r in held] == [400] * len(held)
            # The slots are free again.
            assert (await client.get("/fhir/metadata")).status_code == 200
    finally:
        await application.state.kv.aclose()
        await application.state.engine.dispose()
