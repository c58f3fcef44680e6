"""Searching by date compares instants (FHIR R4 search 3.1.1.5.7 prefixes, 3.1.1.5.8 dates): the
same instant written with any offset finds the same resources; a date without a zone is the Brussels
calendar day, 23 or 25 hours long on the daylight-saving days; values the gateway cannot place in
time are a 400, bodies with such dates a 422, never a 500."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.consents.factories import RX_URL, SSIN
from tests.fhir_profiles.factories import medication_request
from tests.fixtures.app import ClientFactory
from tests.fixtures.clock import Clock
from tests.fixtures.fhir import FHIR_JSON
from tests.time.moments import DST_DAYS, OFFSETS, brussels_midnight_after, written

AUDIT = "/fhir/AuditEvent"
SECOND = timedelta(seconds=1)

# Three prescriptions an hour apart across the autumn change: 02:30 CEST, 02:30 CET, 03:30 CET.
EARLY = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
MIDDLE = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
LATE = datetime(2026, 10, 25, 2, 30, tzinfo=UTC)
# Each body spells its instant differently from the others.
BODY_OFFSETS = {EARLY: "-05:00", MIDDLE: "+14:00", LATE: "+01:00"}

# What each prefix finds, searching for MIDDLE (FHIR R4 search 3.1.1.5.7; the stored value is an
# instant, the search value the range its precision gives).
FOUND_AROUND_MIDDLE = {
    "": {MIDDLE},
    "eq": {MIDDLE},
    "ne": {EARLY, LATE},
    "gt": {LATE},
    "lt": {EARLY},
    "ge": {MIDDLE, LATE},
    "le": {EARLY, MIDDLE},
    "sa": {LATE},
    "eb": {EARLY},
}


async def prescribe_at(
    author: httpx.AsyncClient, clock: Clock, moments: dict[datetime, str]
) -> dict[str, datetime]:
    """A prescription authored at each instant (written with its offset): id -> instant."""
    clock.now = max(moments) + timedelta(hours=1)
    made = {}
    for moment, offset in moments.items():
        body = medication_request(now=moment, authoredOn=written(moment, offset))
        response = await author.post(RX_URL, json=body, headers=FHIR_JSON)
        assert response.status_code == 201, response.text
        made[response.json()["id"]] = moment
    return made


async def found(client: httpx.AsyncClient, url: str, params: Any = None) -> set[str]:
    response = await client.get(url, params=params)
    assert response.status_code == 200, response.text
    return {e["resource"]["id"] for e in response.json().get("entry", [])}


@pytest.mark.parametrize("offset", OFFSETS)
async def test_authoredon_every_prefix_compares_instants_whatever_the_offset(
    clock: Clock, author: httpx.AsyncClient, offset: str
) -> None:
    made = await prescribe_at(author, clock, BODY_OFFSETS)
    value = written(MIDDLE, offset)
    for prefix, expected in FOUND_AROUND_MIDDLE.items():
        ids = await found(author, RX_URL, {"authoredon": prefix + value})
        assert {made[i] for i in ids} == expected, prefix


@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("day", DST_DAYS, ids=("spring", "autumn"))
async def test_authoredon_a_date_is_the_brussels_day_of_23_or_25_hours(
    clock: Clock, author: httpx.AsyncClient, day: date, offset: str
) -> None:
    first, following = (
        brussels_midnight_after(day - timedelta(days=1)),
        brussels_midnight_after(day),
    )
    assert following - first == timedelta(hours=23 if day.month == 3 else 25)
    before, start, end, after = first - SECOND, first, following - SECOND, following
    made = await prescribe_at(author, clock, {m: offset for m in (before, start, end, after)})
    searches = {
        day.isoformat(): {start, end},
        f"ne{day.isoformat()}": {before, after},
        f"le{(day - timedelta(days=1)).isoformat()}": {before},
        f"gt{day.isoformat()}": {after},
        f"lt{day.isoformat()}": {before},
        f"ge{(day + timedelta(days=1)).isoformat()}": {after},
    }
    for value, expected in searches.items():
        ids = await found(author, RX_URL, {"authoredon": value})
        assert {made[i] for i in ids} == expected, value
    both = [("authoredon", f"ge{day.isoformat()}"), ("authoredon", f"lt{day + timedelta(1)}")]
    assert {made[i] for i in await found(author, RX_URL, both)} == {start, end}


async def test_authoredon_a_plus_sign_typed_unencoded_is_the_offset(
    clock: Clock, author: httpx.AsyncClient
) -> None:
    """``+`` in a query string decodes to a space (HTML forms); in a date it can only be a ``+``."""
    made = await prescribe_at(author, clock, BODY_OFFSETS)
    for prefix in ("", "eq", "ge"):
        url = f"{RX_URL}?authoredon={prefix}{written(MIDDLE, '+01:00')}"
        assert url.endswith("+01:00")  # sent as typed: the server decodes it to a space
        expected = FOUND_AROUND_MIDDLE[prefix]
        assert {made[i] for i in await found(author, url)} == expected, prefix


@pytest.mark.parametrize(
    "value",
    [
        "9999-12-31",
        "ge0001-01-01",
        "le9999-12-31T23:59:59+14:00",
        "eq0001-01-01T00:00:00+14:00",
        "1899-12-31",
        "2201-01-01",
        "2026-02-30",
        "2026-10-25T24:00:00Z",
        "2026-10-25T10:00:00+15:00",
        "ap2026-10-25",
    ],
)
async def test_authoredon_values_out_of_range_or_invalid_are_400(
    author: httpx.AsyncClient, value: str
) -> None:
    response = await author.get(RX_URL, params={"authoredon": value})
    assert response.status_code == 400, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == ["authoredon"]


@pytest.mark.parametrize(
    ("element", "value", "path"),
    [
        ("authoredOn", "9999-12-31T23:59:59+14:00", "MedicationRequest.authoredOn"),
        ("authoredOn", "9999-12-31T23:00:00-05:00", "MedicationRequest.authoredOn"),
        ("authoredOn", "0001-01-01T00:00:00+14:00", "MedicationRequest.authoredOn"),
        ("authoredOn", "1899-12-31T12:00:00+01:00", "MedicationRequest.authoredOn"),
        (
            "end",
            "9999-12-31T23:00:00-05:00",
            "MedicationRequest.dispenseRequest.validityPeriod.end",
        ),
        ("end", "9999-12-31", "MedicationRequest.dispenseRequest.validityPeriod.end"),
    ],
)
async def test_rx19_rx12_an_authoredon_or_validity_out_of_time_is_422(
    author: httpx.AsyncClient, element: str, value: str, path: str
) -> None:
    body = medication_request()
    if element == "end":
        body["dispenseRequest"]["validityPeriod"]["end"] = value
    else:
        body[element] = value
    response = await author.post(RX_URL, json=body, headers=FHIR_JSON)
    assert response.status_code == 422, response.text
    expressions = [e for issue in response.json()["issue"] for e in issue.get("expression", [])]
    assert path in expressions


# -- the access log ------------------------------------------------------------------------------


def recorded(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["recorded"].replace("Z", "+00:00"))


@pytest.mark.parametrize("offset", OFFSETS)
async def test_sec5_audit_date_every_prefix_compares_instants_whatever_the_offset(
    author: httpx.AsyncClient, client_for: ClientFactory, offset: str
) -> None:
    """The audit's times are the gateway's own (microseconds): a value with microseconds is one
    instant. Later searches are audited too, so every search is capped at the third event."""
    for _ in range(3):
        await author.post(RX_URL, json=medication_request(), headers=FHIR_JSON)
    admin = await client_for("admin")
    listed = await admin.get(AUDIT, params={"patient": SSIN})
    events = sorted(listed.json()["entry"], key=lambda e: recorded(e["resource"]))
    first, middle, last = (recorded(e["resource"]) for e in events[:3])
    assert first < middle < last
    cap = ("date", f"le{written(last, 'Z', timespec='microseconds')}")
    value = written(middle, offset, timespec="microseconds")
    at = {first: "first", middle: "middle", last: "last"}
    expected = {
        "eq": {middle},
        "ne": {first, last},
        "gt": {last},
        "lt": {first},
        "ge": {middle, last},
        "le": {first, middle},
        "sa": {last},
        "eb": {first},
    }
    for prefix, moments in expected.items():
        params = [("patient", SSIN), ("date", prefix + value), cap]
        response = await admin.get(AUDIT, params=params)
        assert response.status_code == 200, response.text
        times = {recorded(e["resource"]) for e in response.json().get("entry", [])}
        assert sorted(at[t] for t in times) == sorted(at[m] for m in moments), prefix
