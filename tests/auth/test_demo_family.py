"""``make demo`` seeds a family (issue 16, Done means; PO-3): Jan is linked as the parent of Noor,
born in 2020, once, listed in the manifest; in the portal Jan acts for Noor by typing her number
and sees her prescription, while a number that is not his child's is refused."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from gateway import demo
from gateway.app import create_app
from tests.auth.test_cli_and_demo import env, serving  # noqa: F401  (env: a fixture)
from tests.fixtures.processes import free_port
from tests.portal.conftest import csrf_of, log_in


def test_demo_family_in_the_manifest_once_and_the_parent_acts_for_the_child(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = free_port()
    settings = demo.prepare(host="127.0.0.1", port=port, data_dir=env)
    manifest = json.loads((env / "demo" / "manifest.json").read_text())
    patients = {p["name"].split()[0]: p for p in manifest["patients"]}
    [family] = manifest["family"]
    assert family["parent"] == patients["Jan"]["ssin"]
    assert family["child_born"] == "2020-06-15"
    assert family["child"] not in {p["ssin"] for p in manifest["patients"]}  # no login of her own
    assert asyncio.run(demo.seed_family(settings)) == 0  # a second start links nobody twice
    capsys.readouterr()

    with serving(create_app(settings), port):
        asyncio.run(acts_for_child(port, patients["Jan"], family["child"], patients["Marie"]))


async def acts_for_child(
    port: int, parent: dict[str, str], child: str, not_his: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as portal:
        await log_in(portal, parent["ssin"], parent["password"])
        page = await portal.get("/portal/mandates")
        refused = await portal.post(
            "/portal/acting-for/child", data={"csrf": csrf_of(page.text), "child": not_his["ssin"]}
        )
        assert refused.headers["location"] == "/portal/mandates"
        assert "not registered as a parent" in (await portal.get("/portal/mandates")).text
        page = await portal.get("/portal/mandates")
        acting = await portal.post(
            "/portal/acting-for/child", data={"csrf": csrf_of(page.text), "child": child}
        )
        assert acting.headers["location"] == "/portal/acting-for"
        hers = await portal.get("/portal/acting-for")
        assert hers.status_code == 200
        assert "Paracetamolum" in hers.text  # her demo prescription
        assert child in hers.text  # the banner says for whom he acts
