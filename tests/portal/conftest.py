"""Portal fixtures: a patient account, and a browser-like client (cookies kept, redirects not
followed) that logs in through the real authorization-code + PKCE flow over ASGI."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from tests.fhir_profiles.factories import SSIN
from tests.fixtures.auth import BASE_URL

PASSWORD = "correct horse battery"  # a test account's password
OTHER_SSIN = "90010100123"
OTHER_PASSWORD = "another good password"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')

Browser = Callable[..., Awaitable[httpx.AsyncClient]]


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def hidden_fields(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html))


@pytest.fixture
async def accounts(app: FastAPI) -> None:
    await app.state.auth.accounts.set_password(SSIN, PASSWORD)
    await app.state.auth.accounts.set_password(OTHER_SSIN, OTHER_PASSWORD)


@pytest.fixture
async def browser(app: FastAPI, accounts: None) -> AsyncIterator[Browser]:
    clients: list[httpx.AsyncClient] = []

    async def make(address: str = "127.0.0.1", **headers: str) -> httpx.AsyncClient:
        """A browser at the client address ``address`` (what the app sees as the TCP peer)."""
        transport = httpx.ASGITransport(app=app, client=(address, 50123))
        client = httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=headers)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def authorize_page(client: httpx.AsyncClient) -> tuple[str, httpx.Response]:
    """GET /portal/login -> the authorize URL; GET it -> the login page."""
    start = await client.get("/portal/login")
    assert start.status_code == 303, start.text
    location = start.headers["location"]
    page = await client.get(location)
    return location, page


async def submit_login(
    client: httpx.AsyncClient, page: httpx.Response, ssin: str, password: str
) -> httpx.Response:
    fields = hidden_fields(page.text)
    fields.update({"ssin": ssin, "password": password})
    return await client.post("/oauth/authorize", data=fields)


async def log_in(client: httpx.AsyncClient, ssin: str = SSIN, password: str = PASSWORD) -> None:
    _, page = await authorize_page(client)
    assert page.status_code == 200, page.text
    answer = await submit_login(client, page, ssin, password)
    assert answer.status_code == 303, answer.text
    callback = urlsplit(answer.headers["location"])
    assert callback.path == "/portal/callback"
    assert "code" in parse_qs(callback.query)
    done = await client.get(answer.headers["location"])
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/portal/"
