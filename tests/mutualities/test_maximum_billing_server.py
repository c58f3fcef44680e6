"""Maximum billing from a real ``python -m mutualities`` process over TCP, with the operator's own
households and ceilings (``--households``, ``--ceilings``): the household crosses its ceiling in
one claim and the next one is the fund's in full."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from mutualities import systems
from tests.fixtures.processes import Process, free_port, wait_healthy
from tests.mutualities.factories import ANNE, JAN, claim, item

pytestmark = pytest.mark.e2e


def _files(tmp: Path) -> list[str]:
    households = {"households": [{"id": "h1", "fund": "100", "income_bracket": "low",
                                  "members": [JAN, ANNE]}]}  # fmt: skip
    ceilings = {
        "year": 2030,
        "source": "a test's own table",
        "illustrative": True,
        "brackets": [{"code": "low", "ceiling": "50.00"}, {"code": "high", "ceiling": "900.00"}],
        "preferential": {"ceiling": "80.00"},
    }
    (tmp / "households.json").write_text(json.dumps(households))
    (tmp / "ceilings.json").write_text(json.dumps(ceilings))
    return ["--households", str(tmp / "households.json"), "--ceilings", str(tmp / "ceilings.json")]


def _settled(client: httpx.Client, body: dict[str, Any], key: str) -> dict[str, Any]:
    sent = client.post("/funds/100/Claim", json=body, headers={"Idempotency-Key": key})
    assert sent.status_code == 200, sent.text
    found = client.get("/funds/100/ClaimResponse", params={"request-key": key}).json()
    [response] = [
        r
        for r in _resources(found)
        if any(t["code"] == "settled" for t in r.get("meta", {}).get("tag", []))
    ]
    return response


def _resources(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        if value.get("resourceType") == "ClaimResponse":
            return [value]
        return [r for v in value.values() for r in _resources(v)]
    if isinstance(value, list):
        return [r for v in value for r in _resources(v)]
    return []


def _counter(response: dict[str, Any]) -> dict[str, Any]:
    [extension] = [e for e in response["extension"] if e["url"] == systems.MAXIMUM_BILLING]
    return {
        part["url"]: next(v for k, v in part.items() if k.startswith("value"))
        for part in extension["extension"]
    }


def test_the_operators_households_and_ceilings(tmp_path: Path) -> None:
    port = free_port()
    process = Process(
        "mutualities",
        [sys.executable, "-m", "mutualities", "--code", "100", "--port", str(port),
         "--data-dir", str(tmp_path / "data"), "--settle-after-seconds", "0", *_files(tmp_path)],
        dict(os.environ),
        tmp_path / "server.log",
    )  # fmt: skip
    process.start()
    try:
        wait_healthy(process, f"http://127.0.0.1:{port}/healthz", timeout=30)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            # Anne has the increased reimbursement: the household's ceiling is the lower of 50.00
            # (its bracket) and 80.00 (the social one). Her 20 home visits cost her 2.00 each.
            first = _settled(client, claim(patient=ANNE, items=[item("103132", count=20)]), "a")
            assert _counter(first)["runningTotal"] == {"value": 40.0, "currency": "EUR"}
            assert _counter(first)["ceiling"] == {"value": 50.0, "currency": "EUR"}
            # Jan's specialist consultation (12.00) crosses it: 10.00 for him, 2.00 for the fund.
            crossing = _settled(client, claim(items=[item("102012")]), "b")
            copay = [t for t in crossing["total"] if t["category"]["coding"][0]["code"] == "copay"]
            assert copay[0]["amount"]["value"] == 10.0
            assert _counter(crossing)["incomeBracket"] == "low"
            assert "reachedOn" in _counter(crossing)
            past = _settled(client, claim(items=[item("101032")]), "c")
            codes = {
                t["category"]["coding"][0]["code"]: t["amount"]["value"] for t in past["total"]
            }
            assert codes["copay"] == 0.0
            assert codes["maximum-billing"] == 4.0
    finally:
        process.stop()
    assert '"maximum_billing": "2.00"' in process.tail(100)  # the crossing settlement's log
