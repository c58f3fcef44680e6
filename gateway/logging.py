"""structlog configured once; the request-id middleware binds ``request_id`` to every event.

Events are snake_case facts with ids and reason codes, never an SSIN, a name or a resource body.
Query strings are never logged: a search by patient carries the SSIN there.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.fhir.outcomes import internal_error_body

REQUEST_ID_HEADER = "x-request-id"
# Accept a client's id only when it is short and plain, so nothing odd reaches logs or headers.
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

log = structlog.get_logger("gateway.http")


def configure_logging(fmt: str = "json", level: str = "INFO") -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        # Not cached: structlog.testing.capture_logs must be able to swap the processors in tests.
        cache_logger_on_first_use=False,
    )


class RequestIdMiddleware:
    """Echo or generate ``X-Request-ID`` on every response and bind it for the request's log events.

    A plain ASGI middleware (not BaseHTTPMiddleware): it sits on the hot path of every call.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _CLIENT_REQUEST_ID.match(candidate):
                    request_id = candidate
                break
        if not request_id:
            request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        header = (b"x-request-id", request_id.encode("latin-1"))
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        started_response = False

        async def send_tracked(message: Message) -> None:
            nonlocal started_response
            started_response = started_response or message["type"] == "http.response.start"
            await send_with_id(message)

        # client_id=None resets what authentication bound for a previous request on this context.
        with structlog.contextvars.bound_contextvars(request_id=request_id, client_id=None):
            try:
                await self.app(scope, receive, send_tracked)
            except Exception as exc:
                # Last resort: log the details under the request id, tell the client nothing more.
                log.error("unhandled_error", error_type=type(exc).__name__, exc_info=exc)
                if started_response:
                    raise
                await send_tracked(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", b"application/fhir+json")],
                    }
                )
                await send_tracked(
                    {"type": "http.response.body", "body": internal_error_body(request_id)}
                )
            finally:
                log.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    ms=round((time.perf_counter() - started) * 1000, 2),
                )
