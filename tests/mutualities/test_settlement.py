"""Settlement after the fund's delay, polled through the feed or per key (AT-1)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import orjson
from fhir.resources.R4B.bundle import Bundle

from mutualities import systems
from tests.fixtures.clock import Clock
from tests.mutualities.conftest import AppFactory, ClientFactory
from tests.mutualities.factories import ANNE, adjudication, claim, feed_answers, item, submit


async def feed(
    client: httpx.AsyncClient, since: int = 0, count: int | None = None
) -> dict[str, Any]:
    params: dict[str, Any] = {"since": since}
    if count is not None:
        params["_count"] = count
    response = await client.get("/funds/100/settlements", params=params)
    assert response.status_code == 200
    Bundle.model_validate_json(response.content)
    bundle: dict[str, Any] = orjson.loads(response.content)
    return bundle


def resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return feed_answers(bundle)


def next_cursor(bundle: dict[str, Any]) -> int:
    [url] = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
    return int(httpx.URL(url).params["since"])


async def test_settles_after_the_delay(client: httpx.AsyncClient, clock: Clock) -> None:
    ack = orjson.loads((await submit(client, claim(items=[item(count=2)]), "k")).content)
    number = ack["identifier"][0]["value"]
    clock.advance(seconds=59)
    assert resources(await feed(client)) == []
    clock.advance(seconds=1)
    [settled] = resources(await feed(client))
    assert settled["meta"]["tag"][0]["code"] == "settled"
    assert settled["identifier"][0] == {"system": systems.ATTESTATION, "value": number}
    assert settled["request"]["identifier"]["value"] == "k"
    assert settled["outcome"] == "complete"
    [line] = settled["addItem"]
    assert adjudication(line, "intreatment") == 60.06
    assert adjudication(line, "benefit") == 52.06
    assert adjudication(line, "copay") == 8.00
    assert settled["payment"]["amount"] == {"value": 52.06, "currency": "EUR"}
    assert settled["payment"]["date"] == "2025-03-14"
    assert settled["created"] == "2025-03-14T09:31:00+00:00"  # the due time, not the read time
    report = (await client.get("/funds/100/admin/received")).json()
    assert report["counts"]["settled"] == 1
    assert report["attestations"][0]["reimbursed"] == "52.06"
    assert report["attestations"][0]["patient_share"] == "8.00"


async def test_preferential_status_lowers_the_patient_share(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    await submit(client, claim(), "standard")
    await submit(client, claim(patient=ANNE), "preferential")
    clock.advance(minutes=1)
    by_key = {r["request"]["identifier"]["value"]: r for r in resources(await feed(client))}
    standard, preferential = by_key["standard"], by_key["preferential"]
    assert adjudication(standard["addItem"][0], "copay") == 4.00
    assert adjudication(preferential["addItem"][0], "copay") == 1.00
    assert adjudication(preferential["addItem"][0], "benefit") > adjudication(
        standard["addItem"][0], "benefit"
    )


async def test_the_feed_pages_with_a_cursor(client: httpx.AsyncClient, clock: Clock) -> None:
    for index, code in enumerate(("101032", "101076", "103132")):
        await submit(client, claim(items=[item(code)]), f"k{index}")
        clock.advance(seconds=1)
    clock.advance(minutes=1)
    page = await feed(client, count=2)
    assert [r["request"]["identifier"]["value"] for r in resources(page)] == ["k0", "k1"]
    cursor = next_cursor(page)
    page = await feed(client, since=cursor, count=2)
    assert [r["request"]["identifier"]["value"] for r in resources(page)] == ["k2"]
    cursor = next_cursor(page)
    page = await feed(client, since=cursor)
    assert resources(page) == []
    assert next_cursor(page) == cursor  # nothing new: poll again with the same cursor
    # Reading again from the start gives the same events: they are stored, not recomputed.
    assert resources(await feed(client)) == resources(await feed(client))


async def test_the_current_answer_per_key(client: httpx.AsyncClient, clock: Clock) -> None:
    ack = (await submit(client, claim(), "k")).content

    async def current(key: str) -> list[dict[str, Any]]:
        response = await client.get("/funds/100/ClaimResponse", params={"request-key": key})
        assert response.status_code == 200
        Bundle.model_validate_json(response.content)
        return [entry["resource"] for entry in orjson.loads(response.content).get("entry", [])]

    assert await current("k") == [orjson.loads(ack)]
    assert await current("unknown") == []
    clock.advance(minutes=1)
    [settled] = await current("k")
    assert settled["meta"]["tag"][0]["code"] == "settled"
    refused = (await submit(client, claim(items=[item("999999")]), "refused")).content
    assert await current("refused") == [orjson.loads(refused)]


async def test_settle_after_zero_settles_at_once(
    make_app: AppFactory, client_for: ClientFactory
) -> None:
    client = await client_for(await make_app(settle_after=timedelta(0)))
    await submit(client, claim(), "k")
    [settled] = resources(await feed(client))
    assert settled["payment"]["amount"]["value"] == 26.03


async def test_settlement_and_answers_survive_a_restart(
    make_app: AppFactory, client_for: ClientFactory, clock: Clock
) -> None:
    before = await client_for(await make_app())
    ack = await submit(before, claim(), "k")
    after = await client_for(await make_app())  # a new process on the same store
    clock.advance(minutes=5)
    replay = await submit(after, claim(), "k")
    assert replay.content == ack.content
    [settled] = resources(await feed(after))
    assert settled["created"] == "2025-03-14T09:31:00+00:00"
    assert len(resources(await feed(before))) == 1
