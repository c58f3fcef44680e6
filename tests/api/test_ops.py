"""Operator endpoints: liveness, readiness (database, Redis) and Prometheus metrics."""

from __future__ import annotations

import httpx

from gateway.settings import Settings


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
    text = (await prescriber.get("/metrics")).text
    assert 'route="/fhir/MedicationRequest/{logical_id}"' in text
    assert "some-id-that-does-not-exist" not in text
    assert "gateway_http_request_seconds_bucket" in text
