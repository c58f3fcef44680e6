"""``create_app(settings)``: the ASGI application, its routers and its shared clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI

from gateway import __version__, capability, ops, validation
from gateway.access.guard import system_clock
from gateway.audit import group, refusals
from gateway.audit.readiness import writer_ready
from gateway.audit_events import routes as audit_routes
from gateway.auth import routes as auth_routes
from gateway.auth import state as auth_state
from gateway.claims import routes as claims
from gateway.claims.outbox import backlog
from gateway.claims.worker import ClaimWorker
from gateway.communications import routes as communications
from gateway.consents import routes as consents
from gateway.db import create_engine, session_factory
from gateway.dispenses import routes as dispenses
from gateway.fhir import outcomes
from gateway.fhir.handling import read_handling
from gateway.fhir.head import HeadAsGet
from gateway.fhir.headers import FhirResponseHeaders
from gateway.fhir.ids import check_path_ids
from gateway.fhir.negotiation import check_accept
from gateway.fhir.pretty import PrettyJson
from gateway.fhir.search_post import SearchByPost
from gateway.kv import create_store
from gateway.limits import BodyDeadline, HeaderLimit, InFlightLimit
from gateway.logging import RequestIdMiddleware, configure_logging
from gateway.portal import login as login_routes
from gateway.portal import routes as portal_routes
from gateway.prescriptions import routes as prescriptions
from gateway.presence import national_register
from gateway.settings import Settings
from gateway.storage.keys import keyring_from


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.log_format, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The embedded default delivers claims from the API process itself (docs/claims.md).
        if settings.worker_runs_in_process() and settings.mutuality_urls:
            app.state.claim_worker = ClaimWorker(
                settings,
                app.state.sessions,
                app.state.keyring,
                clock=lambda: app.state.clock(),  # the app's clock, read at each use
            )
            await app.state.claim_worker.start()
        try:
            yield
        finally:
            if app.state.claim_worker is not None:
                await app.state.claim_worker.stop()
                app.state.claim_worker = None
            if app.state.national_register is not None:
                await app.state.national_register.aclose()
        await app.state.kv.aclose()
        await app.state.engine.dispose()

    app = FastAPI(
        title="eHealth exchange and e-prescription gateway",
        version=__version__,
        lifespan=lifespan,
        # Off in production unless GATEWAY_API_DOCS (docs/operations.md): the schema maps the API.
        docs_url="/docs" if settings.api_docs_enabled() else None,
        redoc_url="/redoc" if settings.api_docs_enabled() else None,
        openapi_url="/openapi.json" if settings.api_docs_enabled() else None,
    )
    app.state.settings = settings
    app.state.keyring = keyring_from(settings)
    app.state.engine = create_engine(settings.database_url)
    app.state.sessions = session_factory(app.state.engine)
    app.state.kv = create_store(settings.redis_url)
    # The access decision's clock (relationship ends, prescription expiry); tests replace it.
    app.state.clock = system_clock
    app.state.claim_worker = None  # set by the lifespan when the forwarder runs in process
    # Proofs of presence are checked with the national register when one is configured.
    app.state.national_register = national_register(settings)
    app.state.auth = auth_state.build(settings, app.state.sessions, app.state.keyring, app.state.kv)

    app.include_router(auth_routes.router)
    app.include_router(login_routes.router)

    # Every /fhir call: an Accept we can answer (406), ids of a FHIR id's shape (404), and how
    # strictly its search parameters are taken (Prefer: handling).
    fhir = APIRouter(
        prefix="/fhir",
        dependencies=[Depends(check_accept), Depends(check_path_ids), Depends(read_handling)],
    )
    fhir.include_router(capability.router)
    # $validate before the families: no family route may take POST [type]/$validate for its own.
    fhir.include_router(validation.router)
    fhir.include_router(prescriptions.router)
    fhir.include_router(dispenses.router)
    fhir.include_router(communications.router)
    fhir.include_router(claims.router)
    fhir.include_router(consents.router)
    fhir.include_router(audit_routes.router)
    app.include_router(fhir)

    app.include_router(ops.router)
    app.include_router(portal_routes.router)
    outcomes.install(app)
    refusals.install(app)  # after outcomes: refusals are audited (gateway/audit/refusals.py)
    # The outage answer (503), readiness checks and the readings taken when /metrics is scraped.
    ops.install(app, ops.Metrics())
    ops.add_readiness_check(app, "audit", lambda: writer_ready(app.state.sessions))
    app.state.metrics.scrape_hooks["claims_queue"] = lambda metrics: _claims_backlog(app, metrics)
    # Outermost last: request id -> metrics -> header size -> in-flight bound -> body deadline
    # -> routes, so that 431s, 503s and 408s carry a request id and are counted (gateway/limits.py).
    # Innermost, on /fhir only: _pretty indents the body, then HEAD runs as GET and drops it (so
    # its Content-Length is the GET's), then no-store, nosniff and charset=utf-8 (ASVS V8.2.1).
    # Innermost of all: answers wait until the events their request recorded are chained.
    if settings.audit_group_commits():
        group.install(app, app.state.sessions, wait=settings.audit_batch_ms / 1000)
    app.add_middleware(PrettyJson)
    app.add_middleware(HeadAsGet)
    app.add_middleware(FhirResponseHeaders)
    # POST [type]/_search runs as the GET it stands for, inside the body deadline.
    app.add_middleware(SearchByPost, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(BodyDeadline, timeout=settings.body_timeout_seconds)
    app.add_middleware(InFlightLimit, limit=settings.max_in_flight)
    app.add_middleware(HeaderLimit, limit=settings.max_header_bytes)
    app.add_middleware(ops.MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(ops.DrainMiddleware)
    app.add_middleware(RequestIdMiddleware)
    return app


async def _claims_backlog(app: FastAPI, metrics: ops.Metrics) -> None:
    """The claims queue gauges: what the funds are still owed, and since when."""
    async with app.state.sessions() as session:
        funds = await backlog(session)
    now = app.state.clock()
    for fund in funds:
        age = (now - fund.oldest).total_seconds() if fund.oldest is not None else 0.0
        metrics.record_claims_queue(
            fund.fund_code, pending=fund.pending, failed=fund.failed, oldest_seconds=max(age, 0.0)
        )
