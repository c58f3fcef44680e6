"""Operator endpoints (docs/architecture.md 4): liveness, readiness and Prometheus metrics.

``/readyz`` checks what a request needs (the database, Redis when configured, and every check
registered with ``add_readiness_check``, such as the audit writer's) so a load balancer stops
sending traffic to an instance that cannot serve. Both stay public (they say nothing but
ok / unavailable). While the database or Redis is down, a request that needs it is answered 503
with ``Retry-After`` (``install``): a client and the proxy may retry, and nothing was written. Metrics are per process; with several uvicorn workers, scrape each instance (or
run one worker per container, as docker/ does). In production ``/metrics`` needs an operator's
bearer token (role ``admin``), unless ``GATEWAY_METRICS_PUBLIC`` says otherwise
(docs/operations.md): route names and error counts tell an attacker what is there.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import redis.exceptions
import structlog
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy import event, exc, text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhir_profiles.issues import Issue
from gateway.drain import DRAIN
from gateway.errors import Forbidden
from gateway.fhir.outcomes import outcome_response
from gateway.storage.tables import audit_events

router = APIRouter(include_in_schema=False)
log = structlog.get_logger("gateway.ops")

# Seconds a client is asked to wait while the database or Redis is unreachable: a restart of
# either takes seconds, and the proxy retries idempotent requests on the other instance at once.
OUTAGE_RETRY_AFTER_SECONDS: Final = 2
# What a lost connection to the database or Redis raises (and a pool that stays empty): the
# request wrote nothing, so the client may send it again.
OUTAGES: Final = (
    exc.OperationalError,
    exc.InterfaceError,
    exc.TimeoutError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)

ReadinessCheck = Callable[[], Awaitable[bool]]
ScrapeHook = Callable[["Metrics"], Awaitable[None]]


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
        # Read when scraped (``refresh``): the pool, readiness, and what the scrape hooks set.
        self.pool = Gauge(
            "gateway_db_pool_connections",
            "Database connections of this process by state (in_use, idle) and the pool's size",
            ["state"],
            registry=self.registry,
        )
        self.ready = Gauge(
            "gateway_ready",
            "1 when the readiness check passes (/readyz), by check",
            ["check"],
            registry=self.registry,
        )
        self.audit_records = Counter(
            "gateway_audit_records",
            "Audit events inserted by this process",
            registry=self.registry,
        )
        self.claims_queued = Gauge(
            "gateway_claims_queue_jobs",
            "Deliveries to the funds by fund and state (pending: to send; failed: parked)",
            ["fund", "state"],
            registry=self.registry,
        )
        self.claims_oldest = Gauge(
            "gateway_claims_queue_oldest_seconds",
            "Age of the oldest pending delivery to the fund (0 when none is pending)",
            ["fund"],
            registry=self.registry,
        )
        self.scrape_errors = Counter(
            "gateway_metrics_scrape_errors",
            "Scrape-time readings that failed (the database was unreachable)",
            ["reading"],
            registry=self.registry,
        )
        self.scrape_hooks: dict[str, ScrapeHook] = {}

    def count_audit_inserts(self, engine: AsyncEngine) -> None:
        """Count the rows this process inserts into ``audit_events``, whatever writes them."""
        prefix = f"INSERT INTO {audit_events.name} "

        def inserted(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
            if statement.startswith(prefix) and cursor.rowcount > 0:
                self.audit_records.inc(cursor.rowcount)

        event.listen(engine.sync_engine, "after_cursor_execute", inserted)

    def record_pool(self, engine: AsyncEngine) -> None:
        pool: Any = engine.sync_engine.pool
        if all(hasattr(pool, name) for name in ("checkedout", "checkedin", "size")):
            self.pool.labels("in_use").set(pool.checkedout())
            self.pool.labels("idle").set(pool.checkedin())
            self.pool.labels("size").set(pool.size())

    def record_claims_queue(
        self, fund: str, *, pending: int, failed: int, oldest_seconds: float
    ) -> None:
        self.claims_queued.labels(fund, "pending").set(pending)
        self.claims_queued.labels(fund, "failed").set(failed)
        self.claims_oldest.labels(fund).set(oldest_seconds)


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


def add_readiness_check(app: FastAPI, name: str, check: ReadinessCheck) -> None:
    """One more thing ``/readyz`` (and ``gateway_ready``) waits for, beside the database and
    Redis: ``check()`` answers whether it can serve now (False or an exception: not ready)."""
    app.state.readiness_checks[name] = check


async def readiness(app: FastAPI) -> dict[str, bool]:
    async def database() -> bool:
        async with app.state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    checks: dict[str, ReadinessCheck] = {"database": database}
    if app.state.settings.redis_url:
        checks["redis"] = app.state.kv.ping
    checks.update(app.state.readiness_checks)
    results: dict[str, bool] = {"accepting": False} if DRAIN.active else {}
    for name, check in checks.items():
        try:
            results[name] = bool(await check())
        except Exception as error:  # any failure means "not ready"; the type goes to the log
            log.warning("not_ready", check=name, error_type=type(error).__name__)
            results[name] = False
    return results


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    results = await readiness(request.app)
    checks = {name: "ok" if ok else "unavailable" for name, ok in results.items()}
    ready = all(results.values())
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
    metrics: Metrics = request.app.state.metrics
    metrics.record_pool(request.app.state.engine)
    for name, ok in (await readiness(request.app)).items():
        metrics.ready.labels(name).set(1 if ok else 0)
    for name, hook in metrics.scrape_hooks.items():
        try:
            await hook(metrics)
        except OUTAGES:  # the readings keep their last values; gateway_ready says why
            metrics.scrape_errors.labels(name).inc()
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def _outage(_request: Request, error: Exception) -> Response:
    """503 + ``Retry-After`` for a request that found the database or Redis unreachable."""
    log.warning("dependency_unavailable", error_type=type(error).__name__)
    issue = Issue(
        code="transient",
        expression="",
        diagnostics="a service the gateway needs is unavailable; retry after Retry-After",
    )
    return outcome_response(503, [issue], {"Retry-After": str(OUTAGE_RETRY_AFTER_SECONDS)})


def install(app: FastAPI, metrics: Metrics) -> None:
    """The outage answer, the readiness checks' registry and the scrape-time readings."""
    for outage in OUTAGES:
        app.add_exception_handler(outage, _outage)
    app.state.readiness_checks = {}
    app.state.metrics = metrics
    metrics.count_audit_inserts(app.state.engine)


# --- graceful shutdown -----------------------------------------------------------------------


class DrainMiddleware:
    """While draining, every answer closes its connection (``Connection: close``), so the proxy
    keeps no idle connection to an instance about to stop.

    Decided when the answer starts, not when the request came in: a request that arrived just
    before SIGTERM and answers during the drain would otherwise hand its connection back to the
    proxy's pool for another keep-alive period, which can outlast the drain, and a POST the proxy
    then sends on it as uvicorn closes it is a 502 the proxy may not retry."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_closing_when_draining(message: Message) -> None:
            if message["type"] == "http.response.start" and DRAIN.active:
                message["headers"] = [*message.get("headers", []), (b"connection", b"close")]
            await send(message)

        await self.app(scope, receive, send_closing_when_draining)
