"""What operators watch (docs/operations.md "Dashboard and alerts"): every metric the Grafana
dashboard and the Prometheus alert rules in docker/ use is served by /metrics with the type the
query expects, and the readings move with what happens; an outage of the database or Redis is a
503 with Retry-After, and a draining instance closes each connection and is not ready."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import httpx
import pytest
import yaml  # type: ignore[import-untyped]
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from gateway import ops
from gateway.app import create_app
from gateway.auth import devpki
from gateway.settings import Settings
from tests.claims.conftest import post_claim
from tests.claims.factories import claim
from tests.fhir_profiles.guide_examples import guide_prescription
from tests.fixtures.app import ClientFactory
from tests.fixtures.auth import PRESCRIBER_NIHDI, Auth, DevPki, TestClient
from tests.fixtures.fhir import FHIR_JSON
from tests.fixtures.processes import ROOT, free_port

DASHBOARD = ROOT / "docker" / "grafana" / "gateway-dashboard.json"
ALERTS = ROOT / "docker" / "prometheus" / "alerts.yml"
METRIC = re.compile(r"\bgateway_[a-z_]+\b")
# What a query's name adds to the metric's own (the exposition format's sample suffixes).
SUFFIXES = {"_total": "counter", "_bucket": "histogram", "_sum": "histogram", "_count": "histogram"}


def queries() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = [target["expr"] for panel in panels for target in panel["targets"]]
    rules = yaml.safe_load(ALERTS.read_text())["groups"]
    exprs += [rule["expr"] for group in rules for rule in group["rules"]]
    return exprs


def exposed_types(text: str) -> dict[str, str]:
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.M))


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A fund that cannot be reached and no worker in the process: a claim stays queued."""
    return settings.model_copy(
        update={
            "mutuality_urls": {"100": f"http://127.0.0.1:{free_port()}/funds/100"},
            "worker_in_process": False,
        }
    )


def test_the_dashboard_and_the_alerts_ask_for_metrics_only() -> None:
    """The files parse and name gateway metrics (a panel or a rule without one is a typo)."""
    exprs = queries()
    assert len(exprs) >= 10
    assert all(METRIC.search(expr) or "up{" in expr for expr in exprs), exprs
    names = {name for expr in exprs for name in METRIC.findall(expr)}
    for needed in ("claims_queue", "oldest", "ready", "audit_records", "db_pool", "seconds_bucket"):
        assert any(needed in name for name in names), needed


async def test_every_metric_of_the_dashboard_and_the_alerts_is_served(
    app: FastAPI, client_for: ClientFactory
) -> None:
    prescriber = await client_for("prescriber", nihdi=PRESCRIBER_NIHDI)
    created = await prescriber.post(
        "/fhir/MedicationRequest",
        json=guide_prescription(datetime.now(UTC), prescriber=PRESCRIBER_NIHDI),
        headers=FHIR_JSON,
    )
    assert created.status_code == 201, created.text
    queued = await post_claim(prescriber, claim(), key="dashboard-1")
    assert queued.status_code == 202, queued.text

    text = (await prescriber.get("/metrics")).text
    types = exposed_types(text)
    for expr in queries():
        for name in METRIC.findall(expr):
            # A counter's TYPE line carries its _total; a histogram's names the family.
            suffix = next((s for s in SUFFIXES if name.endswith(s)), "")
            base = name if name in types else name.removesuffix(suffix)
            assert base in types, f"{name} (in {expr!r}) is not served"
            if suffix:
                assert types[base] == SUFFIXES[suffix], name

    # The readings follow what happened: the create was audited, the claim waits for its fund,
    # tokens went through the token endpoint, the database is ready.
    samples = dict(re.findall(r"^(gateway_\S+) (\S+)$", text, flags=re.M))
    assert float(samples["gateway_audit_records_total"]) >= 1
    assert float(samples['gateway_claims_queue_jobs{fund="100",state="pending"}']) == 1
    assert float(samples['gateway_claims_queue_jobs{fund="100",state="failed"}']) == 0
    assert float(samples['gateway_claims_queue_oldest_seconds{fund="100"}']) >= 0
    assert float(samples['gateway_ready{check="database"}']) == 1
    assert float(samples['gateway_ready{check="audit"}']) == 1
    assert float(samples['gateway_db_pool_connections{state="size"}']) >= 1
    assert any(
        k.startswith('gateway_http_requests_total{method="POST",route="/oauth/token",status="200"')
        for k in samples
    )


async def token_request(app: FastAPI, dev_pki: DevPki, *, register: bool) -> httpx.Response:
    """A client's token request: it reads the client registry (the database) and spends the
    assertion's jti in the key-value store."""
    auth = Auth(app, dev_pki)
    if register:
        client = await auth.register("prescriber")
    else:
        issuer = dev_pki.issuer
        cert, key = devpki.issue_client_certificate(issuer, common_name="Outage", nihdi=None)
        client = TestClient("outage-client", "prescriber", None, cert, key, [issuer.cert])
    try:
        return await auth.token_response(client)
    finally:
        await app.state.kv.aclose()
        await app.state.engine.dispose()


def assert_retryable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == str(ops.OUTAGE_RETRY_AFTER_SECONDS)
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "transient"


async def test_a_database_outage_is_a_503_with_retry_after(
    settings: Settings, dev_pki: DevPki
) -> None:
    app = create_app(
        settings.model_copy(
            update={"database_url": f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none"}
        )
    )
    assert_retryable(await token_request(app, dev_pki, register=False))


async def test_a_redis_outage_is_a_503_with_retry_after(
    settings: Settings, dev_pki: DevPki
) -> None:
    app = create_app(
        settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    )
    assert_retryable(await token_request(app, dev_pki, register=True))


async def test_a_draining_instance_closes_connections_and_is_not_ready(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway.test"
    ) as client:
        assert "connection" not in (await client.get("/fhir/metadata")).headers
        monkeypatch.setattr(ops.DRAIN, "active", True)
        served = await client.get("/fhir/metadata")
        ready = await client.get("/readyz")
    assert served.status_code == 200  # still served, on a connection that then closes
    assert served.headers["connection"] == "close"
    assert ready.status_code == 503
    assert ready.json()["checks"]["accepting"] == "unavailable"


async def test_an_answer_begun_before_the_drain_and_sent_during_it_closes_its_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGTERM lands while a request is in the app: its answer must close the connection too,
    or the proxy pools it past the drain and a POST sent on it as the instance stops is a 502."""

    async def slow_app(scope: Scope, receive: Receive, send: Send) -> None:
        monkeypatch.setattr(ops.DRAIN, "active", True)  # SIGTERM while the request is served
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=ops.DrainMiddleware(slow_app)),
        base_url="http://gateway.test",
    ) as client:
        served = await client.post("/fhir/MedicationDispense", content=b"{}")
    assert served.status_code == 200
    assert served.headers["connection"] == "close"
