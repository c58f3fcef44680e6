"""Maximum billing over the funds' HTTP API: a household's patient shares of a calendar year, up to
its ceiling, then paid by the fund (mutualities/maximum_billing.py; domain AT-1).

Each test gives the fund its own members and households (``--members``, ``--households``) and
reads what a settlement says: the amounts per service and in total, and the household's counter in
the extension ``urn:ehealth-gateway:maximum-billing``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fhir.resources.R4B.claimresponse import ClaimResponse

from mutualities import systems
from mutualities.households import load_households
from mutualities.maximum_billing import load_ceilings
from mutualities.members import load_members
from tests.fixtures.clock import Clock
from tests.mutualities.conftest import AppFactory, ClientFactory
from tests.mutualities.factories import (
    ANNE,
    JAN,
    TODAY,
    adjudication,
    cancel,
    claim,
    item,
    submit,
)

NOOR = "20061510236"  # Jan's daughter (the gateway demo's child), fund 100, standard
LONE = "90112416713"  # listed in no household here
BRACKET_1 = 254.99  # data/maximum_billing.json, 2024
SOCIAL = 516.92
HIGHEST = 2067.66


@pytest.fixture
async def fund(
    tmp_path: Path, make_app: AppFactory, client_for: ClientFactory
) -> httpx.AsyncClient:
    members = [
        {"ssin": JAN, "fund": "100", "preferential": False},
        {"ssin": NOOR, "fund": "100", "preferential": False},
        {"ssin": ANNE, "fund": "100", "preferential": True},
        {"ssin": LONE, "fund": "100", "preferential": False},
    ]
    households = [
        {"id": "peeters", "fund": "100", "income_bracket": "1", "members": [JAN, NOOR]},
        # bracket 3 (746.66) but a member with increased reimbursement: the social ceiling
        {"id": "anne", "fund": "100", "income_bracket": "3", "members": [ANNE]},
    ]
    (tmp_path / "members.json").write_text(json.dumps({"members": members}))
    (tmp_path / "households.json").write_text(json.dumps({"households": households}))
    app = await make_app(
        members_file=tmp_path / "members.json",
        households_file=tmp_path / "households.json",
        settle_after=timedelta(seconds=60),
    )
    return await client_for(app)


async def settle(client: httpx.AsyncClient, clock: Clock, body: dict[str, Any], key: str) -> Any:
    """Submit, let it fall due, and return the settlement ClaimResponse for ``key``."""
    answer = await submit(client, body, key)
    assert answer.status_code == 200, answer.text
    clock.advance(minutes=1)
    response = await client.get("/funds/100/ClaimResponse", params={"request-key": key})
    assert response.status_code == 200
    [settled] = _claim_responses(orjson.loads(response.content))
    assert settled["outcome"] == "complete"
    assert any(tag["code"] == "settled" for tag in _tags(settled)), "not settled yet"
    ClaimResponse.model_validate(settled)  # a valid R4 ClaimResponse, extension included
    return settled


def _claim_responses(resource: Any) -> list[dict[str, Any]]:
    """Every ClaimResponse in a searchset (bare, or inside a response message Bundle)."""
    if isinstance(resource, dict):
        if resource.get("resourceType") == "ClaimResponse":
            return [resource]
        return [found for value in resource.values() for found in _claim_responses(value)]
    if isinstance(resource, list):
        return [found for value in resource for found in _claim_responses(value)]
    return []


def _tags(resource: dict[str, Any]) -> list[dict[str, Any]]:
    return list((resource.get("meta") or {}).get("tag") or [])


def counter(settled: dict[str, Any], year: int | None = None) -> dict[str, Any]:
    """The maximum-billing extension of ``year`` (the only one if None), as {url: value}."""
    found = [e for e in settled.get("extension", []) if e["url"] == systems.MAXIMUM_BILLING]
    parts = [{p["url"]: _value(p) for p in e["extension"]} for e in found]
    if year is not None:
        parts = [p for p in parts if p["year"] == year]
    [one] = parts
    return one


def _value(part: dict[str, Any]) -> Any:
    [(key, value)] = [(k, v) for k, v in part.items() if k.startswith("value")]
    return value["value"] if key == "valueMoney" else value


def lines(settled: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = settled.get("addItem") or settled["item"]
    return found


def paid_by_cap(entry: dict[str, Any]) -> float:
    try:
        return adjudication(entry, "maximum-billing")
    except KeyError:
        return 0.0


def total(settled: dict[str, Any], code: str) -> float:
    return adjudication({"adjudication": settled["total"]}, code)


async def test_below_the_ceiling_the_patient_pays_his_share(
    fund: httpx.AsyncClient, clock: Clock
) -> None:
    # four physiotherapy sessions: 7.50 each for the patient
    settled = await settle(fund, clock, claim(items=[item("560011", count=4)]), "below")
    [line] = lines(settled)
    assert adjudication(line, "copay") == 30.00
    assert adjudication(line, "benefit") == 86.00
    assert paid_by_cap(line) == 0.0
    assert counter(settled) == {
        "year": 2025,
        "incomeBracket": "1",
        "ceiling": BRACKET_1,
        "runningTotal": 30.00,
        "householdPaid": 30.00,
    }
    assert "maximum billing" not in settled["disposition"]


async def test_the_household_crosses_in_one_claim_then_the_fund_pays_in_full(
    fund: httpx.AsyncClient, clock: Clock
) -> None:
    # Noor's 25 home visits (10.00 each) bring her father's household to 250.00 of 254.99.
    first = await settle(fund, clock, claim(patient=NOOR, items=[item("103132", count=25)]), "n1")
    assert counter(first)["runningTotal"] == 250.00
    assert "reachedOn" not in counter(first)

    # Jan's specialist consultation (share 12.00) crosses it: he pays 4.99, the fund 7.01 more.
    crossing = await settle(fund, clock, claim(items=[item("102012")]), "j1")
    [line] = lines(crossing)
    assert adjudication(line, "copay") == 4.99
    assert paid_by_cap(line) == 7.01
    assert adjudication(line, "benefit") == round(16.17 + 7.01, 2)
    assert total(crossing, "maximum-billing") == 7.01
    assert crossing["payment"]["amount"]["value"] == round(16.17 + 7.01, 2)
    assert counter(crossing) == {
        "year": 2025,
        "incomeBracket": "1",
        "ceiling": BRACKET_1,
        "runningTotal": 262.00,
        "householdPaid": BRACKET_1,
        "reachedOn": TODAY,
    }
    assert "maximum billing" in crossing["disposition"]

    # Past it, a week later: the whole share is the fund's, the date reached stays.
    clock.advance(days=7)
    past = await settle(
        fund, clock, claim(items=[item("101032", serviced="2025-03-21", count=2)]), "j2"
    )
    [line] = lines(past)
    assert adjudication(line, "copay") == 0.00
    assert adjudication(line, "benefit") == 60.06  # the legal fee: nothing left to the patient
    assert paid_by_cap(line) == 8.00
    assert past["payment"]["amount"]["value"] == 60.06
    assert counter(past)["runningTotal"] == 270.00
    assert counter(past)["householdPaid"] == BRACKET_1
    assert counter(past)["reachedOn"] == TODAY


async def test_a_claim_whose_services_cross_the_ceiling_is_split_by_service(
    fund: httpx.AsyncClient, clock: Clock
) -> None:
    await settle(fund, clock, claim(items=[item("103132", count=24)]), "first")  # 240.00
    settled = await settle(
        fund,
        clock,
        claim(items=[item("102012", count=1), item("101032", count=3)]),  # 12.00, then 12.00
        "second",
    )
    specialist, gp = lines(settled)
    assert (adjudication(specialist, "copay"), paid_by_cap(specialist)) == (12.00, 0.00)
    assert (adjudication(gp, "copay"), paid_by_cap(gp)) == (2.99, 9.01)
    assert total(settled, "copay") == 14.99
    assert counter(settled)["runningTotal"] == 264.00


async def test_the_counter_starts_afresh_at_the_brussels_new_year(
    fund: httpx.AsyncClient, clock: Clock
) -> None:
    clock.now = datetime(2025, 12, 31, 20, 0, tzinfo=UTC)
    await settle(fund, clock, claim(items=[item("103132", serviced="2025-12-30", count=26)]), "a")

    # 23:30 UTC on 31 December is 00:30 on 1 January in Brussels: a service of 1 January is no
    # longer in the future, and it counts in 2026, from zero.
    clock.now = datetime(2025, 12, 31, 23, 30, tzinfo=UTC)
    new_year = await settle(fund, clock, claim(items=[item("102012", serviced="2026-01-01")]), "b")
    [line] = lines(new_year)
    assert (adjudication(line, "copay"), paid_by_cap(line)) == (12.00, 0.00)
    assert counter(new_year) == {
        "year": 2026,
        "incomeBracket": "1",
        "ceiling": BRACKET_1,
        "runningTotal": 12.00,
        "householdPaid": 12.00,
    }

    # A service of 31 December settled in January still belongs to 2025, past its ceiling.
    late = await settle(fund, clock, claim(items=[item("102012", serviced="2025-12-31")]), "c")
    [line] = lines(late)
    assert (adjudication(line, "copay"), paid_by_cap(line)) == (0.00, 12.00)
    assert counter(late)["year"] == 2025
    assert counter(late)["runningTotal"] == 272.00
    # reached by the settlement at 20:01 UTC, 21:01 in Brussels, on the 31st
    assert counter(late)["reachedOn"] == "2025-12-31"


async def test_a_ceiling_reached_just_after_midnight_is_dated_in_brussels(
    fund: httpx.AsyncClient, clock: Clock
) -> None:
    clock.now = datetime(2025, 12, 31, 23, 50, tzinfo=UTC)  # 00:50 on 1 January in Brussels
    settled = await settle(
        fund, clock, claim(items=[item("103132", serviced="2025-12-31", count=26)]), "k"
    )
    # The services are of 2025; the settlement that reached the ceiling is of 1 January.
    assert counter(settled)["year"] == 2025
    assert counter(settled)["reachedOn"] == "2026-01-01"
    assert total(settled, "maximum-billing") == 5.01


async def test_preferential_status_keeps_its_lower_share_under_the_social_ceiling(
    fund: httpx.AsyncClient, clock: Clock
) -> None:
    # Anne's home visits cost her 2.00 each (10.00 for a standard member); 99 of them: 198.00.
    first = await settle(fund, clock, claim(patient=ANNE, items=[item("103132", count=99)]), "a1")
    [line] = lines(first)
    assert adjudication(line, "copay") == 198.00
    # bracket 3 would be 746.66: with increased reimbursement the social ceiling is lower
    assert counter(first)["ceiling"] == SOCIAL
    assert counter(first)["incomeBracket"] == "3"
    await settle(fund, clock, claim(patient=ANNE, items=[item("103132", count=98)]), "a2")
    crossing = await settle(
        fund, clock, claim(patient=ANNE, items=[item("103132", count=97)]), "a3"
    )
    [line] = lines(crossing)
    # 198 + 196 = 394.00 counted; 122.92 more reach 516.92; the fund pays the other 71.08
    assert adjudication(line, "copay") == 122.92
    assert paid_by_cap(line) == 71.08
    assert adjudication(line, "benefit") == round(97 * 45.35 - 122.92, 2)  # all but his share
    assert counter(crossing)["runningTotal"] == 588.00
    assert counter(crossing)["reachedOn"] == TODAY


async def test_households_do_not_share_counters(fund: httpx.AsyncClient, clock: Clock) -> None:
    await settle(fund, clock, claim(items=[item("103132", count=30)]), "jan")  # past 254.99
    lone = await settle(fund, clock, claim(patient=LONE, items=[item("102012")]), "lone")
    [line] = lines(lone)
    assert (adjudication(line, "copay"), paid_by_cap(line)) == (12.00, 0.00)
    # listed in no household: alone, income unknown to the fund, so the highest ceiling
    assert counter(lone) == {
        "year": 2025,
        "ceiling": HIGHEST,
        "runningTotal": 12.00,
        "householdPaid": 12.00,
    }


async def test_a_cancelled_attestation_never_counts(fund: httpx.AsyncClient, clock: Clock) -> None:
    ack = orjson.loads((await submit(fund, claim(items=[item("103132", count=30)]), "x")).content)
    [number] = [i["value"] for i in ack["identifier"] if i["system"] == systems.ATTESTATION]
    cancelled = await fund.post("/funds/100/Claim/$cancel", json=cancel(number))
    assert cancelled.status_code == 200
    settled = await settle(fund, clock, claim(items=[item("102012")]), "y")
    assert counter(settled)["runningTotal"] == 12.00


async def test_the_built_in_households_and_ceilings(
    make_app: AppFactory, client_for: ClientFactory, clock: Clock
) -> None:
    """The demo's Peeters household (data/households.json) is in the lowest bracket."""
    client = await client_for(await make_app())
    settled = await settle(client, clock, claim(items=[item("101032")]), "builtin")
    assert counter(settled)["incomeBracket"] == "1"
    assert counter(settled)["ceiling"] == BRACKET_1
    data = json.loads(
        (Path(__file__).parents[2] / "mutualities/data/maximum_billing.json").read_text()
    )
    assert data["year"] == 2024
    assert data["source"]
    assert data["illustrative"] is False
    ceilings = [float(row["ceiling"]) for row in data["brackets"]]
    assert ceilings == sorted(ceilings)
    assert ceilings[0] == BRACKET_1


def test_the_gateway_demo_names_the_funds_household() -> None:
    """gateway/demo_data.py keeps a copy of the demo household for its manifest."""
    from gateway.demo_data import HOUSEHOLD

    members = load_members()
    households = load_households(members)
    ceilings = load_ceilings()
    for ssin in HOUSEHOLD.members:
        member = members.lookup(HOUSEHOLD.fund_code, ssin)
        assert member is not None, "a demo household member is not insured with its fund"
        household = households.of(HOUSEHOLD.fund_code, ssin, preferential=member.preferential)
        assert household.key == HOUSEHOLD.key
        assert household.income_bracket == HOUSEHOLD.income_bracket
        assert ceilings.of(household) == Decimal(HOUSEHOLD.ceiling)
