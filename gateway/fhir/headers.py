"""Headers on every ``/fhir`` answer: never stored by a cache, never sniffed as another type.

FHIR answers carry prescriptions, consents and audit events: a shared or browser cache must not
keep them (OWASP ASVS 4.0.3 V8.1.1, V8.2.1; ``docs/security.md``), and a browser must not read
the JSON as HTML or script (V14.4.4). The portal sets its own, stricter set
(``gateway/portal/security.py``); the token endpoints set ``no-store`` themselves (RFC 6749 5.1).
A header a route sets itself is kept.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

FHIR_PREFIX = "/fhir"
_HEADERS = ((b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff"))


class FhirResponseHeaders:
    """A plain ASGI middleware adding ``_HEADERS`` to answers under ``/fhir``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not (
            path == FHIR_PREFIX or path.startswith(FHIR_PREFIX + "/")
        ):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in _HEADERS if h[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
