"""A prescription expires at the first instant after its last valid day in Brussels (RX-12, RX-7),
on the daylight-saving days too, whatever offset its dates were written with."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.consents.factories import RX_URL
from tests.dispenses.factories import dispense_rid, fetch, outcome_text
from tests.fhir_profiles.factories import medication_request
from tests.fixtures.clock import Clock
from tests.fixtures.fhir import FHIR_JSON, rid_of
from tests.time.moments import DST_DAYS, OFFSETS, brussels, brussels_midnight_after, written

MINUTE = timedelta(minutes=1)


async def valid_until(
    author: httpx.AsyncClient, clock: Clock, last_day: date, offset: str, *, as_instant: bool
) -> dict[str, Any]:
    """A prescription authored five days before ``last_day`` and valid until ``last_day``: the
    end written as the date, or as an instant of that Brussels day in ``offset``."""
    authored = brussels(last_day - timedelta(days=5), 10)
    clock.now = authored
    end = written(brussels(last_day, 12), offset) if as_instant else last_day.isoformat()
    body = medication_request(now=authored, authoredOn=written(authored, offset))
    body["dispenseRequest"]["validityPeriod"]["end"] = end
    response = await author.post(RX_URL, json=body, headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


async def dispense_at(
    pharmacy: httpx.AsyncClient, clock: Clock, rx: dict[str, Any], moment: datetime, offset: str
) -> httpx.Response:
    clock.now = moment
    return await dispense_rid(pharmacy, rid_of(rx), whenHandedOver=written(moment, offset))


@pytest.mark.parametrize("as_instant", [False, True], ids=("end-date", "end-instant"))
@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("last_day", DST_DAYS, ids=("spring", "autumn"))
async def test_rx12_prescription_expires_at_brussels_midnight_after_its_last_day(
    clock: Clock,
    author: httpx.AsyncClient,
    pharmacy: httpx.AsyncClient,
    last_day: date,
    offset: str,
    as_instant: bool,
) -> None:
    before = await valid_until(author, clock, last_day, offset, as_instant=as_instant)
    after = await valid_until(author, clock, last_day, offset, as_instant=as_instant)
    expiry = brussels_midnight_after(last_day)

    on_time = await dispense_at(pharmacy, clock, before, expiry - MINUTE, offset)
    assert on_time.status_code == 201, on_time.text

    late = await dispense_at(pharmacy, clock, after, expiry + MINUTE, offset)
    assert late.status_code == 409, late.text
    assert "validity has ended" in outcome_text(late)
    shown = await fetch(author, after["id"])
    assert shown["status"] == "stopped"
    assert shown["statusReason"]["coding"][0]["code"] == "expired"


@pytest.mark.parametrize("last_day", DST_DAYS, ids=("spring", "autumn"))
async def test_rx7_expired_from_brussels_midnight_in_status_searches(
    clock: Clock, author: httpx.AsyncClient, last_day: date
) -> None:
    rx = await valid_until(author, clock, last_day, "-05:00", as_instant=False)
    expiry = brussels_midnight_after(last_day)

    clock.now = expiry - MINUTE
    active = await author.get(RX_URL, params={"status": "active"})
    assert [e["resource"]["id"] for e in active.json()["entry"]] == [rx["id"]]
    clock.now = expiry
    assert (await author.get(RX_URL, params={"status": "active"})).json()["total"] == 0
    stopped = await author.get(RX_URL, params={"status": "stopped"})
    assert [e["resource"]["id"] for e in stopped.json()["entry"]] == [rx["id"]]
