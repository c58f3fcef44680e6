"""Consent and relationships take effect at their instant, whatever offset the client wrote it with
(CO-4, CO-7), and a relationship lasts Brussels calendar months across a daylight-saving change
(CO-6). A colleague's read of a prescription (RX-9) needs both, so it shows when each counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.consents.factories import (
    RX_URL,
    created,
    eid,
    informed_consent,
    prescription,
    reason_of,
    relationship,
)
from tests.fixtures.auth import OTHER_PRESCRIBER_NIHDI
from tests.fixtures.clock import Clock
from tests.time.moments import (
    BEFORE_SPRING_CHANGE,
    DST_INSTANTS,
    FIRST_AUTUMN_HALF_PAST_TWO,
    OFFSETS,
    written,
)

SECOND = timedelta(seconds=1)

# CO-6: an emergency relationship lasts one month, counted on the Brussels calendar and clock:
# 01:30 CET on 29 March -> 01:30 CEST on 29 April; 02:30 CEST on 25 October -> 02:30 CET on
# 25 November. Counted in UTC each would end an hour late.
EMERGENCY_END = {
    BEFORE_SPRING_CHANGE: datetime(2026, 4, 28, 23, 30, tzinfo=UTC),
    FIRST_AUTUMN_HALF_PAST_TWO: datetime(2026, 11, 25, 1, 30, tzinfo=UTC),
}


def eid_read_at(moment: datetime, offset: str) -> list[dict[str, object]]:
    """Proof of presence whose verificationDate is ``moment`` written with ``offset``."""
    proof = eid(moment)
    proof[0]["verificationDate"] = written(moment, offset)
    return proof


async def read(client: httpx.AsyncClient, rx_id: str) -> httpx.Response:
    return await client.get(f"{RX_URL}/{rx_id}")


@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("start", DST_INSTANTS, ids=("spring", "autumn"))
async def test_co4_consent_takes_effect_at_its_instant(
    clock: Clock,
    author: httpx.AsyncClient,
    colleague: httpx.AsyncClient,
    patient: httpx.AsyncClient,
    start: datetime,
    offset: str,
) -> None:
    clock.now = start - timedelta(hours=1)
    rx = await prescription(author, now=clock.now)
    clock.now = start
    await created(patient, informed_consent(proof=False, dateTime=written(start, offset)))
    await created(
        colleague,
        relationship(OTHER_PRESCRIBER_NIHDI, read_at=start - timedelta(minutes=30)),
    )

    clock.now = start - SECOND  # not yet given
    assert reason_of(await read(colleague, rx["id"])) == "no-consent"
    clock.now = start
    assert (await read(colleague, rx["id"])).status_code == 200


@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("start", DST_INSTANTS, ids=("spring", "autumn"))
async def test_co7_relationship_takes_effect_at_the_eid_read_and_lasts_brussels_months(
    clock: Clock,
    author: httpx.AsyncClient,
    colleague: httpx.AsyncClient,
    patient: httpx.AsyncClient,
    start: datetime,
    offset: str,
) -> None:
    clock.now = start - timedelta(hours=1)
    rx = await prescription(author, now=clock.now)
    await created(patient, informed_consent(proof=False))
    clock.now = start
    body = relationship(OTHER_PRESCRIBER_NIHDI, kind="emergency")
    body["verification"] = eid_read_at(start, offset)
    await created(colleague, body)

    clock.now = start - SECOND  # before the eID read
    assert reason_of(await read(colleague, rx["id"])) == "no-relationship"
    clock.now = start
    assert (await read(colleague, rx["id"])).status_code == 200

    end = EMERGENCY_END[start]
    clock.now = end  # CO-7: active while start <= t <= end
    assert (await read(colleague, rx["id"])).status_code == 200
    clock.now = end + SECOND
    assert reason_of(await read(colleague, rx["id"])) == "no-relationship"
