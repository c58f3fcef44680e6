"""The parameters every search (and, for the subsetting ones, every read) takes (FHIR R4
search.html#all, #sort, #total, #summary, #elements; http.html#parameters), and ``Prefer:
handling`` (search.html#errors). Access filtering stays in the query: counts and pages show only
what the caller may see (RX-13)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from fhir_profiles import systems
from fhir_profiles.dates import BRUSSELS
from tests.consents.factories import (
    RX_URL,
    SSIN,
    created,
    eid_headers,
    informed_consent,
    prescription,
)
from tests.consents.test_visibility_http import choice, set_visibility

BY_PATIENT = {"patient:identifier": f"{systems.SSIN}|{SSIN}"}
SUBSETTED = "SUBSETTED"


def ids(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def tags(resource: dict[str, Any]) -> list[str]:
    return [t["code"] for t in resource.get("meta", {}).get("tag", [])]


async def search(client: httpx.AsyncClient, **params: str) -> dict[str, Any]:
    response = await client.get(RX_URL, params={**BY_PATIENT, **params})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def written_days_apart(author: httpx.AsyncClient, n: int) -> list[str]:
    """``n`` prescriptions authored a day apart, oldest first."""
    now = datetime.now(UTC)
    return [(await prescription(author, now=now - timedelta(days=n - i)))["id"] for i in range(n)]


async def test_sort_by_authoredon_both_ways_pages_without_gaps(author: httpx.AsyncClient) -> None:
    oldest_first = await written_days_apart(author, 5)
    for sort, expected in (("authoredon", oldest_first), ("-authoredon", oldest_first[::-1])):
        seen: list[str] = []
        bundle = await search(author, _sort=sort, _count="2")
        while True:
            seen += ids(bundle)
            following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
            if not following:
                break
            response = await author.get(following[0])
            assert response.status_code == 200, response.text
            bundle = response.json()
        assert seen == expected, sort


async def test_sort_by_last_updated_puts_the_changed_one_first(
    author: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    first, second = await written_days_apart(author, 2)
    assert (await set_visibility(patient, first, choice(prescribers="open"))).status_code == 200
    assert ids(await search(author, _sort="-_lastUpdated")) == [first, second]
    assert ids(await search(author, _sort="_lastUpdated")) == [second, first]


async def test_sort_and_cursor_refusals(author: httpx.AsyncClient) -> None:
    await written_days_apart(author, 3)
    for sort in ("colour", "authoredon,_lastUpdated", "-"):
        response = await author.get(RX_URL, params={**BY_PATIENT, "_sort": sort})
        assert response.status_code == 400, sort
        assert response.json()["issue"][0]["expression"] == ["_sort"]
    bundle = await search(author, _sort="authoredon", _count="1")
    [following] = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
    cursor = following.split("_cursor=")[1]
    other = await author.get(RX_URL, params={**BY_PATIENT, "_cursor": cursor})
    assert other.status_code == 400
    assert other.json()["issue"][0]["expression"] == ["_cursor"]


async def test_total_none_and_summary_count(author: httpx.AsyncClient) -> None:
    await written_days_apart(author, 3)
    uncounted = await search(author, _total="none")
    assert "total" not in uncounted
    assert len(ids(uncounted)) == 3
    assert (await search(author, _total="accurate"))["total"] == 3
    counted = await search(author, _summary="count")
    assert counted["total"] == 3
    assert "entry" not in counted
    bad = await author.get(RX_URL, params={**BY_PATIENT, "_total": "some"})
    assert bad.status_code == 400


async def test_elements_keep_what_was_asked_and_the_mandatory_ones(
    author: httpx.AsyncClient,
) -> None:
    [written] = await written_days_apart(author, 1)
    # fhirpy's .elements("status") sends these three names.
    bundle = await search(author, _elements="status,id,resourceType")
    [entry] = bundle["entry"]
    resource = entry["resource"]
    assert resource["id"] == written
    assert resource["status"] == "active"
    # Mandatory (1..1) in FHIR R4: kept, so that the subset is still a valid resource.
    assert {"intent", "subject", "medicationCodeableConcept"} <= resource.keys()
    assert "dosageInstruction" not in resource
    assert "dispenseRequest" not in resource
    assert SUBSETTED in tags(resource)


async def test_summary_on_search_and_read(author: httpx.AsyncClient) -> None:
    [written] = await written_days_apart(author, 1)
    [entry] = (await search(author, _summary="true"))["entry"]
    summary = entry["resource"]
    assert {"status", "intent", "subject", "authoredOn", "requester"} <= summary.keys()
    assert "dosageInstruction" not in summary
    assert SUBSETTED in tags(summary)

    url = f"{RX_URL}/{written}"
    whole = (await author.get(url)).json()
    assert SUBSETTED not in tags(whole)
    assert "dosageInstruction" in whole
    read = await author.get(url, params={"_summary": "true"})
    assert read.status_code == 200
    assert "dosageInstruction" not in read.json()
    assert SUBSETTED in tags(read.json())
    elements = (await author.get(url, params={"_elements": "dosageInstruction"})).json()
    assert "dosageInstruction" in elements
    assert "dispenseRequest" not in elements
    data = (await author.get(url, params={"_summary": "data"})).json()
    assert "text" not in data
    assert "dosageInstruction" in data
    assert (await author.get(url, params={"_summary": "false"})).json() == whole
    for params in ({"_summary": "count"}, {"_summary": "true", "_elements": "status"}):
        refused = await author.get(url, params=params)
        assert refused.status_code == 400, params


async def test_id_and_last_updated(author: httpx.AsyncClient) -> None:
    first, _, third = await written_days_apart(author, 3)
    assert sorted(ids(await search(author, _id=f"{first},{third}"))) == sorted([first, third])
    assert ids(await search(author, _id="nothing-like-it")) == []
    bad = await author.get(RX_URL, params={**BY_PATIENT, "_id": "not an id!"})
    assert bad.status_code == 400
    past = (datetime.now(UTC) - timedelta(minutes=5)).astimezone().isoformat(timespec="seconds")
    assert len(ids(await search(author, _lastUpdated=f"ge{past}"))) == 3
    assert ids(await search(author, _lastUpdated=f"lt{past}")) == []
    # An offset with an unencoded "+", as typed by hand.
    plus = (datetime.now(UTC) - timedelta(minutes=5)).astimezone(BRUSSELS)
    typed = f"{RX_URL}?patient:identifier={quote(BY_PATIENT['patient:identifier'])}&_lastUpdated=ge{plus.isoformat(timespec='seconds')}"
    assert (await author.get(typed)).json()["total"] == 3


async def test_RX_13_counts_and_subsets_show_only_what_the_pharmacy_may_see(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    shown, hidden = await written_days_apart(author, 2)
    await created(patient, informed_consent(proof=False))
    assert (await set_visibility(patient, hidden, choice(pharmacies="none"))).status_code == 200
    for params in ({"_summary": "count"}, {"_total": "accurate", "_elements": "status"}):
        response = await pharmacy.get(
            RX_URL, params={**BY_PATIENT, **params}, headers=eid_headers()
        )
        assert response.status_code == 200, response.text
        assert response.json()["total"] == 1, params
    response = await pharmacy.get(
        RX_URL, params={**BY_PATIENT, "_sort": "-_lastUpdated"}, headers=eid_headers()
    )
    assert ids(response.json()) == [shown]


@pytest.mark.parametrize("prefer", [None, "handling=strict"])
async def test_unknown_parameters_are_400_by_default_and_when_strict(
    author: httpx.AsyncClient, prefer: str | None
) -> None:
    headers = {"Prefer": prefer} if prefer else {}
    response = await author.get(RX_URL, params={**BY_PATIENT, "colour": "blue"}, headers=headers)
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["colour"]


async def test_lenient_handling_ignores_and_reports_unknown_parameters(
    author: httpx.AsyncClient,
) -> None:
    [written] = await written_days_apart(author, 1)
    response = await author.get(
        RX_URL,
        params={**BY_PATIENT, "colour": "blue", "_totalMethod": "count"},
        headers={"Prefer": "handling=lenient"},
    )
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert ids(bundle) == [written]
    [outcome] = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome["resourceType"] == "OperationOutcome"
    assert sorted(i["expression"][0] for i in outcome["issue"]) == ["_totalMethod", "colour"]
    assert {i["severity"] for i in outcome["issue"]} == {"warning"}
    [self_link] = [link["url"] for link in bundle["link"] if link["relation"] == "self"]
    assert "colour" not in self_link
    assert "_totalMethod" not in self_link


async def test_audit_events_sort_by_date_both_ways(
    author: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    await written_days_apart(author, 2)
    newest = (await patient.get("/fhir/AuditEvent", params={"_sort": "-date"})).json()
    oldest = (await patient.get("/fhir/AuditEvent", params={"_sort": "date"})).json()
    recorded = [e["resource"]["recorded"] for e in oldest["entry"]]
    assert recorded == sorted(recorded)
    # The second search sees one event more: the first search, recorded last.
    assert ids(oldest)[: len(ids(newest))] == ids(newest)[::-1]
