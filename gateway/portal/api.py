"""The portal's way to the data: the gateway's own FHIR API, called in-process over ASGI with the
patient's access token (``Authorization: Bearer``), so that the portal is confined, decided and
audited exactly like any other client (PO-4). The handler holds no database session of its own
while it calls (the SQLite default has one pooled connection).
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import Request

from gateway.fhir.media import FHIR_JSON
from gateway.urls import public_base

USER_AGENT = "gateway-portal"


class ApiError(Exception):
    """A non-2xx answer; ``reason`` is the OperationOutcome's first diagnostics (a reason code for
    a 403, docs/architecture.md 5), never shown raw for other statuses."""

    def __init__(self, status: int, reason: str = "") -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
        issue = (body.get("issue") or [{}])[0]
        return str(issue.get("diagnostics") or "")[:200]
    except (ValueError, AttributeError, IndexError, TypeError):
        return ""


def client(request: Request, bearer: str | None = None) -> httpx.AsyncClient:
    headers = {"accept": FHIR_JSON, "user-agent": USER_AGENT}
    if bearer:
        headers["authorization"] = f"Bearer {bearer}"
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=request.app),
        base_url=public_base(request),
        headers=headers,
        timeout=30,
    )


class Fhir:
    """A few FHIR interactions, raising ``ApiError`` on anything but success."""

    def __init__(self, request: Request, access_token: str) -> None:
        self._request = request
        self._token = access_token

    async def _send(
        self, method: str, path: str, *, params: Any = None, body: Any = None
    ) -> dict[str, Any]:
        async with client(self._request, self._token) as http:
            response = await http.request(
                method,
                "/fhir/" + path.lstrip("/"),
                params=params,
                json=body,
                headers={"content-type": FHIR_JSON} if body is not None else None,
            )
        if response.status_code >= 400:
            raise ApiError(response.status_code, _reason(response))
        if not response.content:
            return {}
        parsed = response.json()
        return parsed if isinstance(parsed, dict) else {}

    async def get(self, path: str, params: Any = None) -> dict[str, Any]:
        return await self._send("GET", path, params=params)

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._send("POST", path, body=body)

    async def put(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._send("PUT", path, body=body)


def entries(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        e["resource"]
        for e in bundle.get("entry") or ()
        if isinstance(e, dict) and isinstance(e.get("resource"), dict)
    ]


def next_cursor(bundle: dict[str, Any]) -> str | None:
    """The ``_cursor`` of the bundle's ``next`` link, for a "more" link of the portal's own."""
    from urllib.parse import parse_qs, urlsplit

    for link in bundle.get("link") or ():
        if isinstance(link, dict) and link.get("relation") == "next":
            values = parse_qs(urlsplit(str(link.get("url", ""))).query).get("_cursor")
            if values:
                return values[0]
    return None
