"""structlog configured once; the request-id middleware binds ``request_id`` to every event.

Events are snake_case facts with ids and reason codes, never an SSIN, a name or a resource body.
Neither query strings nor concrete paths are logged: a search by patient carries the SSIN in the
query, and a path carries whatever id a client typed; the access line names the route template.
An unexpected error is logged with its type and the frames it passed through, not its message:
``int()``, ``fromisoformat()`` and friends quote the client's value in theirs.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import traceback
import uuid
from typing import Any

import structlog
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.fhir.media import FHIR_JSON_UTF8
from gateway.fhir.outcomes import internal_error_body
from gateway.ops import route_template

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
            except ClientDisconnect:
                # A body read outside the FHIR door (forms) found the client gone: no one to
                # answer, nothing of ours went wrong (gateway.fhir.negotiation does the same).
                status = 499
                log.info("client_disconnected")
            except Exception as exc:
                # Last resort: log the details under the request id, tell the client nothing more.
                log.error(
                    "unhandled_error",
                    error_type=type(exc).__name__,
                    causes=_causes(exc),
                    frames=_frames(exc),
                )
                if started_response:
                    raise
                await send_tracked(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", FHIR_JSON_UTF8.encode())],
                    }
                )
                await send_tracked(
                    {"type": "http.response.body", "body": internal_error_body(request_id)}
                )
            finally:
                log.info(
                    "request",
                    method=scope["method"],
                    route=route_template(scope),
                    status=status,
                    ms=round((time.perf_counter() - started) * 1000, 2),
                )


def _frames(exc: BaseException, limit: int = 20) -> list[str]:
    """Where ``exc`` went wrong, innermost last: ``module.py:42 in function`` (code, no values)."""
    summary = traceback.extract_tb(exc.__traceback__)[-limit:]
    return [
        f"{'/'.join(frame.filename.split('/')[-2:])}:{frame.lineno} in {frame.name}"
        for frame in summary
    ]


def _causes(exc: BaseException) -> list[str]:
    """The types of the exceptions ``exc`` was raised from or while handling."""
    found: list[str] = []
    cause = exc.__cause__ or exc.__context__
    while cause is not None and len(found) < 5:
        found.append(type(cause).__name__)
        cause = cause.__cause__ or cause.__context__
    return found
