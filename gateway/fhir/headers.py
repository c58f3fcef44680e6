"""Headers on every ``/fhir`` answer: never stored by a cache, never sniffed as another type, and
FHIR JSON always labelled UTF-8.

FHIR answers carry prescriptions, consents and audit events: a shared or browser cache must not
keep them (OWASP ASVS 4.0.3 V8.1.1, V8.2.1; ``docs/security.md``), and a browser must not read
the JSON as HTML or script (V14.4.4). The portal sets its own, stricter set
(``gateway/portal/security.py``); the token endpoints set ``no-store`` themselves (RFC 6749 5.1).
A header a route sets itself is kept, except a bare ``application/fhir+json``, which gains its
``charset=utf-8`` (FHIR R4 http.html#mime-type) whichever route answered.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.fhir.media import FHIR_JSON, FHIR_JSON_UTF8

FHIR_PREFIX = "/fhir"
_HEADERS = ((b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff"))
_BARE_FHIR_JSON = FHIR_JSON.encode()
_CONTENT_TYPE = (b"content-type", FHIR_JSON_UTF8.encode())


def under_fhir(path: str) -> bool:
    return path == FHIR_PREFIX or path.startswith(FHIR_PREFIX + "/")


class FhirResponseHeaders:
    """A plain ASGI middleware adding ``_HEADERS`` to answers under ``/fhir``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not under_fhir(scope.get("path", "")):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    _CONTENT_TYPE
                    if name.lower() == b"content-type" and value.strip() == _BARE_FHIR_JSON
                    else (name, value)
                    for name, value in message.get("headers", [])
                ]
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in _HEADERS if h[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


# What routing writes into the scope; copied back so that the access log and the metrics, which
# read the outer scope, name the route the request was served by (gateway.ops).
_ROUTING_KEYS = ("route", "endpoint", "path_params")


async def run_rewritten(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, **changes: Any
) -> Scope:
    """Run ``app`` on a copy of ``scope`` with ``changes`` (the server keeps its own scope), then
    copy the routing keys back; the copy is returned. HEAD runs as GET, POST _search as a GET
    search (``gateway.fhir.head``, ``gateway.fhir.search_post``)."""
    rewritten = {**scope, **changes}
    try:
        await app(rewritten, receive, send)
    finally:
        for key in _ROUTING_KEYS:
            if key in rewritten:
                scope[key] = rewritten[key]
    return rewritten
