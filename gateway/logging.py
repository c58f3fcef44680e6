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
import traceback
import uuid
from typing import Any, TextIO, cast

import structlog
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.fhir.media import FHIR_JSON_UTF8
from gateway.fhir.outcomes import internal_error_body
from gateway.ops import ResponseWatch, route_template

REQUEST_ID_HEADER = "x-request-id"
# Accept a client's id only when it is short and plain, so nothing odd reaches logs or headers.
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

log = structlog.get_logger("gateway.http")


class _CurrentStderr:
    """``sys.stderr`` as it is when a line is written, not when logging was configured: whoever
    swaps it later (a test's capture, a supervisor's redirection) still gets every line."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


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
        logger_factory=structlog.PrintLoggerFactory(file=cast(TextIO, _CurrentStderr())),
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
        response = ResponseWatch(send, (b"x-request-id", request_id.encode("latin-1")))
        # client_id=None resets what authentication bound for a previous request on this context.
        with structlog.contextvars.bound_contextvars(request_id=request_id, client_id=None):
            try:
                await self.app(scope, receive, response.send)
            except ClientDisconnect:
                # A body read outside the FHIR door (forms) found the client gone: no one to
                # answer, nothing of ours went wrong (gateway.fhir.negotiation does the same).
                response.status = 499
                log.info("client_disconnected")
            except Exception as exc:
                # Last resort: log the details under the request id, tell the client nothing more.
                log.error(
                    "unhandled_error",
                    error_type=type(exc).__name__,
                    causes=_causes(exc),
                    frames=_frames(exc),
                )
                if response.begun:
                    raise
                await response.send(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", FHIR_JSON_UTF8.encode())],
                    }
                )
                await response.send(
                    {"type": "http.response.body", "body": internal_error_body(request_id)}
                )
            finally:
                log.info(
                    "request",
                    method=scope["method"],
                    route=route_template(scope),
                    status=response.status,
                    ms=round(response.seconds() * 1000, 2),
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
