"""The real thing: ``python -m mutualities`` in its own process, spoken to over TCP.

Shows what only a real server can: a 503 share from a seeded fund, and a connection dropped after
commit, which the client sees as a transport error while the fund stored the attestation once and
answers the retry with the same key identically.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.processes import Process, free_port, wait_healthy
from tests.mutualities.factories import ANNE, JAN, LOTTE, MARIE, claim, feed_answers

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SEED = 7


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(base URL, log file) of a process serving funds 100 and 300."""
    tmp = tmp_path_factory.mktemp("mutualities")
    port = free_port()
    log_path = tmp / "server.log"
    command = [
        sys.executable,
        "-m",
        "mutualities",
        "--code",
        "100",
        "--code",
        "300",
        "--port",
        str(port),
        "--data-dir",
        str(tmp / "data"),
        "--settle-after-seconds",
        "0",
        "--seed",
        str(SEED),
    ]
    process = Process("mutualities", command, dict(os.environ), log_path)
    process.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process, f"{base}/healthz", timeout=10)
        yield base, log_path
    finally:
        process.stop()


@pytest.fixture
def client(server: tuple[str, Path]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server[0], timeout=5) as client:
        yield client


def test_health_lists_the_funds(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "funds": ["100", "300"]}
    assert client.get("/funds/300/healthz").json() == {"status": "ok", "fund": "300"}


def test_a_seeded_share_of_503(client: httpx.Client) -> None:
    client.post(
        "/funds/100/admin/faults", json={"error_rate": 0.3, "seed": SEED, "reset_counters": True}
    )
    statuses = [client.get("/funds/100/healthz").status_code for _ in range(40)]
    faults = client.post("/funds/100/admin/faults", json={"error_rate": 0.0}).json()
    rng = random.Random(f"{SEED}:100")
    expected = []
    for _ in statuses:
        error, _drop = rng.random(), rng.random()
        expected.append(503 if error < 0.3 else 200)
    assert statuses == expected
    assert 0 < statuses.count(503) < 40
    assert faults["counters"]["unavailable"] == statuses.count(503)


def test_dropped_after_commit_then_retried(client: httpx.Client) -> None:
    headers = {"Idempotency-Key": "forwarder-job-1"}
    client.post("/funds/100/admin/faults", json={"drop_after_commit_rate": 1.0})
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/funds/100/Claim", json=claim(), headers=headers)
    client.post("/funds/100/admin/faults", json={"drop_after_commit_rate": 0.0})

    stored = client.get("/funds/100/admin/received").json()
    [attestation] = [a for a in stored["attestations"] if a["idempotency_key"] == "forwarder-job-1"]
    assert attestation["deliveries"] == 1

    retry = client.post("/funds/100/Claim", json=claim(), headers=headers)
    again = client.post("/funds/100/Claim", json=claim(), headers=headers)
    assert retry.status_code == again.status_code == 200
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.content == again.content
    assert retry.json()["identifier"][0]["value"] == attestation["attestation"]

    report = client.get("/funds/100/admin/received").json()
    mine = [a for a in report["attestations"] if a["idempotency_key"] == "forwarder-job-1"]
    assert len(mine) == 1
    assert mine[0]["deliveries"] == 3
    assert mine[0]["status"] == "settled"  # --settle-after-seconds 0
    settled = [
        answer
        for answer in feed_answers(client.get("/funds/100/settlements").json())
        if answer["request"]["identifier"]["value"] == "forwarder-job-1"
    ]
    assert len(settled) == 1


def test_a_fund_that_is_down(client: httpx.Client) -> None:
    client.post("/funds/300/admin/faults", json={"down": True})
    try:
        with pytest.raises(httpx.RemoteProtocolError):
            client.post(
                "/funds/300/Claim",
                json=claim(patient=MARIE, insurer="300"),
                headers={"Idempotency-Key": "down-1"},
            )
        assert client.get("/funds/100/healthz").status_code == 200
    finally:
        client.post("/funds/300/admin/faults", json={"down": False})
    assert client.get("/funds/300/admin/received").json()["counts"]["claims"] == 0


def test_logs_carry_no_ssin(server: tuple[str, Path], client: httpx.Client) -> None:
    client.post("/funds/100/Claim", json=claim(patient=ANNE), headers={"Idempotency-Key": "log-1"})
    client.post("/funds/100/Claim", json=claim(patient=LOTTE), headers={"Idempotency-Key": "log-2"})
    log = server[1].read_text()
    assert "claim_accepted" in log
    assert "claim_rejected" in log
    for ssin in (JAN, ANNE, MARIE, LOTTE):
        assert ssin not in log


def test_the_package_never_imports_the_gateway() -> None:
    code = (
        "import sys, mutualities.__main__, mutualities.app; "
        "sys.exit(any(m == 'gateway' or m.startswith('gateway.') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=False).returncode == 0
