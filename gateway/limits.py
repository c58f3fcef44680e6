"""Limits on slow and on many clients, per process (docs/operations.md).

Two plain ASGI middlewares, so that every door that reads a body (the FHIR door, the token
endpoint, the login page, the portal's forms) is covered at once without knowing how it reads:

- ``BodyDeadline``: a request body must arrive completely within ``body_timeout_seconds`` of the
  first read. Otherwise the client gets 408 with ``Connection: close`` at once, and the route,
  which was waiting for the body, sees the client as gone (``http.disconnect``): whatever it
  answers then is dropped. A slow-loris body thus holds a worker for at most the deadline.
- ``InFlightLimit``: at most ``max_in_flight`` requests are served at once by this process;
  beyond it the answer is 503 with ``Retry-After`` immediately (no queue: a queue only turns
  overload into timeouts). Health checks are exempt, so the balancer still sees a live instance.

- ``HeaderLimit``: a request line plus headers over ``max_header_bytes`` is 431. The server bounds
  what it buffers of a header block still arriving (uvicorn h11's incomplete-event limit, set to
  the same figure by ``gateway serve``), but lets a complete block of any size through when it
  arrives in one read; this check makes the bound exact whatever the server.

Open connections and keep-alive are the server's business (``gateway serve`` passes them to
uvicorn); the proxy in front has matching limits (``docker/nginx.conf``).
"""

from __future__ import annotations

import asyncio

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhir_profiles.issues import Issue
from gateway.fhir.media import FHIR_JSON_UTF8
from gateway.fhir.outcomes import outcome_body

log = structlog.get_logger("gateway.http")

# Never refused for load: the balancer's liveness and readiness probes.
EXEMPT_PATHS = frozenset({"/healthz", "/readyz"})
RETRY_AFTER_SECONDS = 1


async def _send_outcome(
    send: Send, status: int, code: str, message: str, headers: list[tuple[bytes, bytes]]
) -> None:
    body = outcome_body([Issue(code=code, expression="", diagnostics=message)])
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", FHIR_JSON_UTF8.encode()),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyDeadline:
    """408 when a request body is not complete ``timeout`` seconds after its first read."""

    def __init__(self, app: ASGIApp, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline: float | None = None  # set at the first read of the body
        body_done = False
        answered = False  # the 408 went out: the route's own answer is dropped

        async def timed_receive() -> Message:
            nonlocal deadline, body_done, answered
            if body_done or answered:
                # After the body: what the server says next (a disconnect) has no deadline.
                return {"type": "http.disconnect"} if answered else await receive()
            if deadline is None:
                deadline = asyncio.get_running_loop().time() + self.timeout
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                answered = True
                log.info("body_timeout", timeout_seconds=self.timeout)
                await _send_outcome(
                    send,
                    408,
                    "timeout",
                    f"the request body did not arrive within {self.timeout:g} seconds",
                    [(b"connection", b"close")],
                )
                return {"type": "http.disconnect"}
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def guarded_send(message: Message) -> None:
            if not answered:
                await send(message)

        await self.app(scope, timed_receive, guarded_send)


class InFlightLimit:
    """503 + ``Retry-After`` at once when ``limit`` requests are already being served."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0  # one event loop per process: no lock needed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            log.warning("overloaded", in_flight=self.in_flight)
            await _send_outcome(
                send,
                503,
                "transient",
                "the server is busy; retry after the time in Retry-After",
                [(b"retry-after", str(RETRY_AFTER_SECONDS).encode())],
            )
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


class HeaderLimit:
    """431 when the request line and headers exceed ``limit`` bytes (RFC 6585 section 5)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # As on the wire: "METHOD path?query HTTP/1.1\r\n" and "name: value\r\n" per header.
        size = len(scope["method"]) + len(scope.get("raw_path") or b"") + 12
        size += len(scope["query_string"]) + 1
        size += sum(len(name) + len(value) + 4 for name, value in scope["headers"])
        if size > self.limit:
            log.info("headers_too_large", limit=self.limit)
            await _send_outcome(
                send,
                431,
                "too-costly",
                f"the request line and headers exceed the limit of {self.limit} bytes",
                [(b"connection", b"close")],
            )
            return
        await self.app(scope, receive, send)
