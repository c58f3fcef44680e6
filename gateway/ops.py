"""Operator endpoints (docs/architecture.md 4): liveness, readiness and Prometheus metrics.

``/readyz`` checks what a request needs (the database, Redis when configured) so a load balancer
stops sending traffic to an instance that cannot serve. Both stay public (they say nothing but
ok / unavailable). Metrics are per process; with several uvicorn workers, scrape each instance (or
run one worker per container, as docker/ does). In production ``/metrics`` needs an operator's
bearer token (role ``admin``), unless ``GATEWAY_METRICS_PUBLIC`` says otherwise
(docs/operations.md): route names and error counts tell an attacker what is there.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from sqlalchemy import text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import Forbidden

router = APIRouter(include_in_schema=False)


class Metrics:
    """One registry per app, so tests (and several apps in one process) never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "gateway_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "gateway_http_request_seconds",
            "HTTP request duration by route template",
            ["route", "method"],
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )


class ResponseWatch:
    """What the access log and the metrics see of a response: its status (500 until one starts:
    an app that raised) and the time since the request came in. ``send`` passes every message on,
    adding ``headers`` to the start."""

    def __init__(self, send: Send, *headers: tuple[bytes, bytes]) -> None:
        self.started = time.perf_counter()
        self.status = 500
        self.begun = False  # the response has started: too late for another answer
        self._send = send
        self._headers = headers

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.begun = True
            if self._headers:
                message["headers"] = [*message.get("headers", []), *self._headers]
        await self._send(message)

    def seconds(self) -> float:
        return time.perf_counter() - self.started


class MetricsMiddleware:
    """Counts every request under its route template (``/fhir/MedicationRequest/{logical_id}``),
    never the concrete path: ids must not become label values."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response = ResponseWatch(send)
        try:
            await self.app(scope, receive, response.send)
        finally:
            route = route_template(scope)
            method = scope["method"]
            self.metrics.requests.labels(route, method, str(response.status)).inc()
            self.metrics.latency.labels(route, method).observe(response.seconds())


def route_template(scope: Scope) -> str:
    """``/fhir/MedicationRequest/{logical_id}``: the matched route's template (never the concrete
    path, whose segments are whatever the client typed), or ``unmatched``.

    A route of an included router knows its path below the router's prefix only; the prefix is
    the leading, literal segments of the concrete path (no route here takes a ``:path``)."""
    template = getattr(scope.get("route"), "path", None)
    if not isinstance(template, str):
        return "unmatched"
    extra = scope["path"].count("/") - template.count("/")
    if extra <= 0 or ":path}" in template:
        return template
    return "/".join(scope["path"].split("/")[: extra + 1]) + template


@router.get("/healthz")
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    checks: dict[str, Any] = {}
    try:
        async with request.app.state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:  # any failure means "not ready"; the reason goes to the operator's logs
        checks["database"] = "unavailable"
    if request.app.state.settings.redis_url:
        try:
            checks["redis"] = "ok" if await request.app.state.kv.ping() else "unavailable"
        except Exception:
            checks["redis"] = "unavailable"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


async def operator_only(request: Request) -> None:
    """Outside the open setting, only an operator's token (role ``admin``) reads the metrics:
    401 without a valid token, 403 for any other role."""
    if request.app.state.settings.metrics_open():
        return
    from gateway.auth.identity import authenticate  # auth imports ops' neighbours: at call time

    caller = await authenticate(request)
    if caller.role != "admin":
        raise Forbidden("wrong-role: the metrics are for operators")


@router.get("/metrics", dependencies=[Depends(operator_only)])
async def metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
