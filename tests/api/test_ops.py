"""Operator endpoints: liveness, readiness (database, Redis) and Prometheus metrics; in
production the API docs are off and the metrics are for operators only."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from gateway.app import create_app
from gateway.settings import Settings
from tests.fixtures.auth import Auth, DevPki


async def test_health_and_readiness(anonymous: httpx.AsyncClient) -> None:
    assert (await anonymous.get("/healthz")).json() == {"status": "ok"}
    ready = await anonymous.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"


async def test_not_ready_without_a_database(
    client_for: object, settings: Settings, tmp_path: object
) -> None:
    from gateway.app import create_app

    broken = create_app(
        settings.model_copy(update={"database_url": "postgresql+psycopg://nobody@127.0.0.1:1/none"})
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=broken), base_url="http://t"
    ) as client:
        response = await client.get("/readyz")
    await broken.state.engine.dispose()
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "unavailable"


async def test_metrics_count_requests_by_route_template(prescriber: httpx.AsyncClient) -> None:
    await prescriber.get("/fhir/MedicationRequest/some-id-that-does-not-exist")
    text = (await prescriber.get("/metrics")).text  # development: open (docs/operations.md)
    assert 'route="/fhir/MedicationRequest/{logical_id}"' in text
    assert "some-id-that-does-not-exist" not in text
    assert "gateway_http_request_seconds_bucket" in text


# --- operator surfaces in production (docs/operations.md) -------------------------------------

PRODUCTION_BASE = "http://127.0.0.1:8443"  # loopback http: allowed in production for tests


@pytest.fixture
async def production_app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(
        settings.model_copy(
            update={"environment": "production", "public_base_url": PRODUCTION_BASE}
        )
    )
    yield application
    await application.state.kv.aclose()
    await application.state.engine.dispose()


async def production_token(app: FastAPI, dev_pki: DevPki, role: str) -> str:
    auth = Auth(app, dev_pki)
    client = await auth.register(role)
    response = await auth.token_response(client.assertion(f"{PRODUCTION_BASE}/oauth/token"))
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def http(app: FastAPI, token: str | None = None) -> httpx.AsyncClient:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=PRODUCTION_BASE, headers=headers
    )


async def test_sec_production_hides_the_api_docs(production_app: FastAPI) -> None:
    async with http(production_app) as client:
        for path in ("/docs", "/redoc", "/openapi.json"):
            response = await client.get(path)
            assert response.status_code == 404, path
            assert response.json()["resourceType"] == "OperationOutcome"
        # What stays public: liveness, readiness (no details), the FHIR capability statement.
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 200
        assert (await client.get("/fhir/metadata")).status_code == 200


async def test_sec_production_api_docs_when_enabled(settings: Settings) -> None:
    application = create_app(
        settings.model_copy(
            update={
                "environment": "production",
                "public_base_url": PRODUCTION_BASE,
                "api_docs": True,
            }
        )
    )
    try:
        async with http(application) as client:
            assert (await client.get("/openapi.json")).json()["info"]["title"]
            assert (await client.get("/docs")).status_code == 200
    finally:
        await application.state.engine.dispose()


async def test_sec_development_serves_the_api_docs(anonymous: httpx.AsyncClient) -> None:
    assert (await anonymous.get("/openapi.json")).status_code == 200


async def test_sec_production_metrics_need_an_operator_token(
    production_app: FastAPI, dev_pki: DevPki
) -> None:
    async with http(production_app) as client:
        refused = await client.get("/metrics")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert "gateway_http_requests" not in refused.text
    prescriber = await production_token(production_app, dev_pki, "prescriber")
    async with http(production_app, prescriber) as client:
        wrong_role = await client.get("/metrics")
        assert wrong_role.status_code == 403
        assert "gateway_http_requests" not in wrong_role.text
    operator = await production_token(production_app, dev_pki, "admin")
    async with http(production_app, operator) as client:
        scraped = await client.get("/metrics")
        assert scraped.status_code == 200
        assert "gateway_http_requests" in scraped.text
