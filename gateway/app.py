"""``create_app(settings)``: the ASGI application, its routers and its shared clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI

from gateway import __version__, ops
from gateway.auth import routes as auth_routes
from gateway.auth import state as auth_state
from gateway.db import create_engine, session_factory
from gateway.fhir import capability, outcomes
from gateway.fhir.negotiation import check_accept
from gateway.kv import create_store
from gateway.logging import RequestIdMiddleware, configure_logging
from gateway.prescriptions import routes as prescriptions
from gateway.settings import Settings
from gateway.storage.crypto import Keyring


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.log_format, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await app.state.kv.aclose()
        await app.state.engine.dispose()

    app = FastAPI(
        title="eHealth exchange and e-prescription gateway",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.keyring = Keyring(settings.key_bytes())
    app.state.engine = create_engine(settings.database_url)
    app.state.sessions = session_factory(app.state.engine)
    app.state.kv = create_store(settings.redis_url)
    app.state.auth = auth_state.build(settings, app.state.sessions, app.state.keyring, app.state.kv)

    app.include_router(auth_routes.router)

    fhir = APIRouter(prefix="/fhir", dependencies=[Depends(check_accept)])
    fhir.include_router(capability.router)
    fhir.include_router(prescriptions.router)
    app.include_router(fhir)

    app.include_router(ops.router)
    outcomes.install(app)
    app.state.metrics = ops.Metrics()
    app.add_middleware(ops.MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(RequestIdMiddleware)
    return app
