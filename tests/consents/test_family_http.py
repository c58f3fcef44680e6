"""Parents act for their children under 12 (domain PO-3), with the family links the operator keeps
(``gateway family ...``, in reality the National Register's household data): a parent reads and
searches his young child's prescriptions (``permit-parent``, audited under the child), not a
13-year-old's, not after he is unlinked, and nobody else's."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from fhir_profiles import systems
from fhir_profiles.ages import ssin_born_on
from gateway.cli import main
from tests.consents.factories import RX_URL, last_audit, prescription, reason_of
from tests.fixtures.app import ClientFactory


def born_years_ago(years: int, sequence: int) -> str:
    today = datetime.now(UTC).date()
    return ssin_born_on(today.replace(year=today.year - years, day=min(today.day, 28)), sequence)


CHILD = born_years_ago(8, 101)
TEEN = born_years_ago(13, 103)
PARENT = born_years_ago(40, 105)
STRANGER = born_years_ago(40, 107)


async def family(*args: str) -> int:
    """``gateway family ...`` as the operator types it."""
    return await asyncio.to_thread(main, ["family", *args])


async def test_PO_3_a_parent_reads_and_searches_his_young_childs_prescriptions(
    app: FastAPI, gateway_env: None, author: httpx.AsyncClient, client_for: ClientFactory
) -> None:
    written = await prescription(author, ssin=CHILD)
    parent = await client_for("patient", ssin=PARENT)
    url = f"{RX_URL}/{written['id']}"
    assert reason_of(await parent.get(url)) == "not-own-data"  # no link yet

    assert await family("link", PARENT, CHILD) == 0
    assert await family("link", PARENT, CHILD) == 2  # linked already
    read = await parent.get(url)
    assert read.status_code == 200, read.text
    row = await last_audit(app)
    assert (row.action, row.outcome, row.reason) == ("read", "permit", "permit-parent")
    found = await parent.get(RX_URL, params={"patient:identifier": f"{systems.SSIN}|{CHILD}"})
    assert found.status_code == 200, found.text
    assert [e["resource"]["id"] for e in found.json()["entry"]] == [written["id"]]

    stranger = await client_for("patient", ssin=STRANGER)
    assert reason_of(await stranger.get(url)) == "not-own-data"

    assert await family("unlink", PARENT, CHILD) == 0
    assert reason_of(await parent.get(url)) == "not-own-data"
    assert await family("unlink", PARENT, CHILD) == 2  # not linked any more


async def test_PO_3_a_parent_does_not_act_for_a_child_of_12_or_more(
    gateway_env: None, author: httpx.AsyncClient, client_for: ClientFactory
) -> None:
    written = await prescription(author, ssin=TEEN)
    assert await family("link", PARENT, TEEN) == 0
    parent = await client_for("patient", ssin=PARENT)
    assert reason_of(await parent.get(f"{RX_URL}/{written['id']}")) == "not-own-data"


async def test_PO_3_the_operator_command_refuses_what_is_no_link(
    gateway_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await family("link", "12345678901", CHILD) == 2  # no valid number
    assert await family("link", CHILD, CHILD) == 2  # nobody is his own parent
    assert await family("link", PARENT, CHILD, "--since", "yesterday") == 2
    out = capsys.readouterr()
    assert CHILD not in out.out + out.err  # the output names no one
    assert await family("show", PARENT, CHILD, "--json") == 0
