"""``make demo`` seeds the mandates (issue 16, items 1 and 6; RX-16, PO-4), as
tests/auth/test_cli_and_demo.py checks the rest of the demo: listed in the manifest, once only,
and working: the nursing home's pharmacy lists Lotte's open prescriptions without eID or
relationship, and Lotte, logged in to the portal, acts for Marie and sees hers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from fhir_profiles import systems
from gateway import demo
from gateway.app import create_app
from tests.auth.test_cli_and_demo import env, run, serving  # noqa: F401  (env: a fixture)
from tests.fixtures.processes import free_port
from tests.portal.conftest import csrf_of, log_in


def test_demo_mandates_in_the_manifest_once_and_in_force(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = free_port()
    settings = demo.prepare(host="127.0.0.1", port=port, data_dir=env)
    manifest = json.loads((env / "demo" / "manifest.json").read_text())
    patients = {p["name"].split()[0]: p for p in manifest["patients"]}
    clients = {c["client_id"]: c for c in manifest["clients"]}
    nursing_home = clients["demo-pharmacy-nursing-home"]
    assert nursing_home["role"] == "pharmacist"
    by_role = {m["role"]: m for m in manifest["mandates"]}
    assert by_role["proxy"]["mandator"] == patients["Marie"]["ssin"]
    assert by_role["proxy"]["holder"] == patients["Lotte"]["ssin"]
    assert by_role["professional"]["mandator"] == patients["Lotte"]["ssin"]
    assert by_role["professional"]["holder"] == nursing_home["nihdi"]
    assert set(by_role["professional"]["actions"]) <= {"collect", "view"}
    # a second start gives no mandate twice
    assert asyncio.run(demo.seed_mandates(settings)) == 0
    capsys.readouterr()  # the demo's log lines

    app = create_app(settings)
    with serving(app, port):
        code, out, err = run(
            capsys, "token", "--client-id", "demo-pharmacy-nursing-home", "--data-dir", str(env)
        )
        assert code == 0, err
        lotte = patients["Lotte"]["ssin"]
        listed = httpx.get(
            f"{manifest['fhir_base']}/MedicationRequest",
            params={"patient:identifier": f"{systems.SSIN}|{lotte}"},
            headers={"Authorization": f"Bearer {out.strip()}"},
        )
        assert listed.status_code == 200, listed.text
        assert listed.json()["total"] >= 1  # her demo prescription, under the mandate

        asyncio.run(acts_for_marie(port, patients))


async def acts_for_marie(port: int, patients: dict[str, dict[str, str]]) -> None:
    """Lotte, in the portal, acts for Marie under the demo mandate and sees her prescriptions."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as holder:
        await log_in(holder, patients["Lotte"]["ssin"], patients["Lotte"]["password"])
        held = await holder.get("/portal/mandates")
        assert held.status_code == 200
        assert patients["Marie"]["ssin"] in held.text
        [mandate_id] = [
            line.split('value="')[1].split('"')[0]
            for line in held.text.splitlines()
            if 'name="mandate"' in line
        ]
        acting = await holder.post(
            "/portal/acting-for", data={"csrf": csrf_of(held.text), "mandate": mandate_id}
        )
        assert acting.headers["location"] == "/portal/acting-for"
        marie = await holder.get("/portal/acting-for")
        assert marie.status_code == 200
        assert 'href="/portal/prescriptions/' in marie.text  # her demo prescription
