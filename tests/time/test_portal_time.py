"""The portal shows Brussels time: a prescription turns expired at Brussels midnight after its last
valid day (RX-12), its date is the Brussels day of ``authoredOn``, and the access log gives each
access at its Brussels clock time (docs/domain.md, section 10)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx

from tests.consents.factories import RX_URL
from tests.fhir_profiles.factories import medication_request
from tests.fixtures.clock import Clock
from tests.fixtures.fhir import FHIR_JSON
from tests.portal.conftest import Browser, log_in
from tests.time.moments import AUTUMN, BRUSSELS, brussels, brussels_midnight_after

MINUTE = timedelta(minutes=1)


async def test_rx12_the_portal_shows_expiry_and_dates_in_brussels_time(
    clock: Clock, browser: Browser, author: httpx.AsyncClient
) -> None:
    # 23:30 on 19 October in New York is 05:30 on 20 October in Brussels.
    authored = brussels(AUTUMN - timedelta(days=5), 5, 30)
    clock.now = authored
    body = medication_request(now=authored, authoredOn="2026-10-19T23:30:00-04:00")
    body["dispenseRequest"]["validityPeriod"]["end"] = AUTUMN.isoformat()
    response = await author.post(RX_URL, json=body, headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    rx: dict[str, Any] = response.json()

    # The patient logs in a minute before the validity ends (the portal's session runs on the
    # same clock: a session opened five days earlier would have timed out).
    clock.now = brussels_midnight_after(AUTUMN) - MINUTE
    me = await browser()
    await log_in(me)
    listing = (await me.get("/portal/prescriptions")).text
    assert "Open" in listing
    assert "Expired" not in listing
    assert "20 Oct 2026" in listing
    assert "19 Oct 2026" not in listing

    clock.now = brussels_midnight_after(AUTUMN) + MINUTE
    listing = (await me.get("/portal/prescriptions")).text
    assert "Expired" in listing
    page = (await me.get(f"/portal/prescriptions/{rx['id']}")).text
    assert "Expired" in page
    assert "25 Oct 2026" in page  # valid until


async def test_sec5_the_access_log_shows_brussels_clock_times(
    browser: Browser, author: httpx.AsyncClient, client_for: Any
) -> None:
    await author.post(RX_URL, json=medication_request(), headers=FHIR_JSON)
    admin = await client_for("admin")
    event = (await admin.get("/fhir/AuditEvent", params={"_count": 1})).json()["entry"][0]
    moment = datetime.fromisoformat(event["resource"]["recorded"].replace("Z", "+00:00"))
    me = await browser()
    await log_in(me)
    page = (await me.get("/portal/access-log")).text
    assert moment.astimezone(BRUSSELS).strftime("%H:%M:%S") in page
