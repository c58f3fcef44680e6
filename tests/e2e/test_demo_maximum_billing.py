"""``make demo`` shows a household past its maximum-billing ceiling (issue 17, item 4): the demo
starts its own sickness funds (``python -m mutualities``, gateway/demo_funds.py), sends this
year's attestations of the Peeters household through the gateway, and the in-process worker
brings back the funds' settlements. Over real HTTP: Jan's attestations page shows the household's
running total past its ceiling; a second start sends nothing twice."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.fixtures.processes import Process, free_port, wait_healthy
from tests.portal.conftest import log_in

pytestmark = pytest.mark.e2e


def start_demo(data_dir: Path, port: int, run: int) -> Process:
    # The demo's own funds and register: no GATEWAY_ variable points elsewhere; SQLite.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "MUTUALITIES_"))}
    demo = Process(
        "demo",
        [sys.executable, "-m", "gateway.cli", "demo", "--port", str(port), "--data-dir",
         str(data_dir)],
        {**env, "GATEWAY_LOG_FORMAT": "console"},
        data_dir.parent / f"demo-{run}.log",
    )  # fmt: skip
    demo.start()
    wait_healthy(demo, f"http://127.0.0.1:{port}/healthz", timeout=180)
    return demo


def test_the_demo_household_crosses_its_ceiling(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "data", free_port()
    demo = start_demo(data_dir, port, 1)
    try:
        manifest = json.loads((data_dir / "demo" / "manifest.json").read_text())
        [household] = manifest["households"]
        assert household["income_bracket"] == "1"
        assert sorted(manifest["mutualities"]) == ["100", "300", "500"]
        jan = next(p for p in manifest["patients"] if p["ssin"] in household["members"])
        page = asyncio.run(attestations_once_reached(port, jan["ssin"], jan["password"]))
        assert "254,99" in page
        assert "270,00" in page  # 120 + 100 + 40 + 10 in patient shares
        assert "under maximum billing" in page
    finally:
        demo.stop()
    assert "claims_created=4" in demo.tail(200)

    # A second start the same year finds its claims: nothing is sent twice.
    again = start_demo(data_dir, port, 2)
    again.stop()
    assert "claims_created=0" in again.tail(200)


async def attestations_once_reached(port: int, ssin: str, password: str) -> str:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as portal:
        await log_in(portal, ssin, password)
        deadline = time.monotonic() + 90
        while True:
            page = await portal.get("/portal/attestations")
            assert page.status_code == 200
            text = page.text.replace("\xa0", " ").replace("\u202f", " ")
            if "Ceiling reached on" in text:
                return text
            assert time.monotonic() < deadline, "the demo's claims did not settle past the ceiling"
            await asyncio.sleep(1)
