"""FHIR REST semantics of /fhir/MedicationRequest over HTTP (create, read, vread, history,
conditional create, search, paging), as HAPI FHIR and Medplum clients expect them."""

from __future__ import annotations

import asyncio
import itertools
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from fhir_profiles import systems
from fhir_profiles.dates import brussels_date
from tests.fhir_profiles.factories import SSIN, medication_request
from tests.fixtures.auth import OTHER_PRESCRIBER_NIHDI
from tests.fixtures.fhir import FHIR_JSON, rid_of

RID = re.compile(r"^BEP[0-9A-Z]{9}$")
OTHER_SSIN = "93051822361"


async def create(
    client: httpx.AsyncClient, body: dict[str, Any] | None = None, **headers: str
) -> httpx.Response:
    return await client.post(
        "/fhir/MedicationRequest",
        json=body or medication_request(),
        headers={**FHIR_JSON, **headers},
    )


async def test_create_answers_201_with_location_etag_and_a_rid(
    prescriber: httpx.AsyncClient,
) -> None:
    response = await create(prescriber)
    assert response.status_code == 201
    body = response.json()
    assert response.headers["etag"] == 'W/"1"'
    assert response.headers["location"].endswith(f"/fhir/MedicationRequest/{body['id']}/_history/1")
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert body["meta"]["versionId"] == "1"
    assert body["status"] == "active"
    assert RID.match(rid_of(body))


async def test_RX_4_rids_are_random_and_unique(prescriber: httpx.AsyncClient) -> None:
    rids = [rid_of((await create(prescriber)).json()) for _ in range(20)]
    assert len(set(rids)) == 20
    assert all(RID.match(rid) for rid in rids)
    # not sequential: consecutive RIDs differ in more than their last characters
    assert sum(a[3:8] != b[3:8] for a, b in itertools.pairwise(rids)) >= 15


async def test_read_vread_and_history(prescriber: httpx.AsyncClient) -> None:
    created = (await create(prescriber)).json()
    url = f"/fhir/MedicationRequest/{created['id']}"

    read = await prescriber.get(url)
    assert read.status_code == 200
    assert read.json() == created
    assert read.headers["etag"] == 'W/"1"'

    vread = await prescriber.get(f"{url}/_history/1")
    assert vread.status_code == 200
    assert vread.json() == created

    history = await prescriber.get(f"{url}/_history")
    assert history.status_code == 200
    bundle = history.json()
    assert bundle["type"] == "history"
    assert bundle["total"] == 1
    assert bundle["entry"][0]["resource"]["id"] == created["id"]


async def test_unknown_ids_and_versions_are_404_outcomes(prescriber: httpx.AsyncClient) -> None:
    created = (await create(prescriber)).json()
    for path in (
        "/fhir/MedicationRequest/doesnotexist",
        f"/fhir/MedicationRequest/{created['id']}/_history/2",
        f"/fhir/MedicationRequest/{created['id']}/_history/abc",
        "/fhir/MedicationRequest/doesnotexist/_history",
        "/fhir/NoSuchType",
    ):
        response = await prescriber.get(path)
        assert response.status_code == 404, path
        assert response.json()["resourceType"] == "OperationOutcome"


async def test_conditional_create_returns_the_existing_resource_on_retry(
    prescriber: httpx.AsyncClient,
) -> None:
    body = medication_request(identifier=[{"system": "urn:example:his", "value": "rx-42"}])
    condition = {"if-none-exist": "identifier=urn:example:his|rx-42"}
    first = await create(prescriber, body, **condition)
    retry = await create(prescriber, body, **condition)
    assert first.status_code == 201
    assert retry.status_code == 200
    assert retry.json()["id"] == first.json()["id"]
    assert rid_of(retry.json()) == rid_of(first.json())
    found = await prescriber.get(
        "/fhir/MedicationRequest", params={"identifier": "urn:example:his|rx-42"}
    )
    assert found.json()["total"] == 1


async def test_concurrent_conditional_creates_make_one_resource(
    prescriber: httpx.AsyncClient,
) -> None:
    body = medication_request(identifier=[{"system": "urn:example:his", "value": "rx-race"}])
    condition = {"if-none-exist": "identifier=urn:example:his|rx-race"}
    responses = await asyncio.gather(*(create(prescriber, body, **condition) for _ in range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 7 + [201]
    assert len({r.json()["id"] for r in responses}) == 1


async def test_conditional_create_takes_every_form_clients_send(
    prescriber: httpx.AsyncClient,
) -> None:
    """FHIR R4 http.html#ccreate: bare, ``?query``, ``Type?query`` (the HAPI client), this
    server's absolute URL; each a search, so one match is the existing resource."""
    body = medication_request(identifier=[{"system": "urn:example:his", "value": "rx-forms"}])
    first = await create(prescriber, body)
    assert first.status_code == 201
    query = "identifier=urn%3Aexample%3Ahis%7Crx-forms"
    for condition in (
        query,
        f"?{query}",
        f"MedicationRequest?{query}",
        f"/fhir/MedicationRequest?{query}",
        f"http://gateway.test/fhir/MedicationRequest?{query}",
    ):
        retry = await create(prescriber, body, **{"if-none-exist": condition})
        assert retry.status_code == 200, (condition, retry.text)
        assert retry.json()["id"] == first.json()["id"]


async def test_conditional_create_over_other_parameters_no_match_one_match_several(
    prescriber: httpx.AsyncClient,
) -> None:
    """Any search parameter the type supports; no match creates, several are 412."""
    day = medication_request()["authoredOn"][:10]
    condition = {"if-none-exist": f"authoredon={day}&status=active"}
    first = await create(prescriber, medication_request(), **condition)
    assert first.status_code == 201, first.text
    again = await create(prescriber, medication_request(), **condition)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert (await create(prescriber, medication_request())).status_code == 201
    several = await create(prescriber, medication_request(), **condition)
    assert several.status_code == 412, several.text
    assert several.json()["issue"][0]["expression"] == ["If-None-Exist"]


async def test_conditional_create_refuses_conditions_that_are_not_searches_here(
    prescriber: httpx.AsyncClient,
) -> None:
    body = medication_request()
    for condition in (
        "",
        "Consent?identifier=urn:example:his|rx-1",
        "http://elsewhere.example/fhir/MedicationRequest?identifier=urn:example:his|rx-1",
        "identifier=rx-1",  # a bare value is a RID only
        "colour=blue",
    ):
        response = await create(prescriber, body, **{"if-none-exist": condition})
        assert response.status_code == 400, condition
        assert response.json()["issue"][0]["expression"] == ["If-None-Exist"]


async def test_conditional_create_never_hands_back_another_prescribers_prescription(
    prescriber: httpx.AsyncClient, colleague: httpx.AsyncClient
) -> None:
    body = medication_request(identifier=[{"system": "urn:example:his", "value": "rx-shared"}])
    assert (await create(prescriber, body)).status_code == 201
    other = colleague
    theirs = medication_request(
        nihdi=OTHER_PRESCRIBER_NIHDI,
        identifier=[{"system": "urn:example:his", "value": "rx-shared"}],
    )
    condition = {"if-none-exist": "identifier=urn:example:his|rx-shared"}
    response = await create(other, theirs, **condition)
    # Not his: the search finds nothing he may see, and the identifier is taken: a conflict that
    # shows nothing of the first prescription.
    assert response.status_code == 409, response.text
    assert "rx-shared" not in response.text


async def test_a_reused_identifier_without_condition_is_a_conflict(
    prescriber: httpx.AsyncClient,
) -> None:
    body = medication_request(identifier=[{"system": "urn:example:his", "value": "rx-7"}])
    assert (await create(prescriber, body)).status_code == 201
    again = await create(prescriber, body)
    assert again.status_code == 409
    assert again.json()["issue"][0]["code"] == "conflict"


async def test_pharmacist_finds_a_prescription_by_its_rid(
    prescriber: httpx.AsyncClient, pharmacist: httpx.AsyncClient
) -> None:
    created = (await create(prescriber)).json()
    await create(prescriber)
    rid = rid_of(created)
    for value in (f"{systems.RID}|{rid}", rid, rid.lower(), f"{systems.LEGACY_RID}|{rid}"):
        bundle = (
            await pharmacist.get("/fhir/MedicationRequest", params={"identifier": value})
        ).json()
        assert bundle["type"] == "searchset"
        assert bundle["total"] == 1, value
        assert bundle["entry"][0]["resource"]["id"] == created["id"]


async def test_search_by_patient_status_and_authored_date(prescriber: httpx.AsyncClient) -> None:
    now = datetime.now(UTC)
    mine = (await create(prescriber, medication_request(now=now))).json()
    await create(prescriber, medication_request(now=now, ssin=OTHER_SSIN))
    ssin_param = f"{systems.SSIN}|{SSIN}"

    by_patient = (
        await prescriber.get("/fhir/MedicationRequest", params={"patient:identifier": ssin_param})
    ).json()
    assert [e["resource"]["id"] for e in by_patient["entry"]] == [mine["id"]]

    active = await prescriber.get(
        "/fhir/MedicationRequest", params={"patient:identifier": ssin_param, "status": "active"}
    )
    assert active.json()["total"] == 1
    completed = await prescriber.get(
        "/fhir/MedicationRequest",
        params={"patient:identifier": ssin_param, "status": "completed,cancelled"},
    )
    assert completed.json()["total"] == 0

    today = brussels_date(now)  # authoredon days are Brussels days
    window = [
        ("authoredon", f"ge{(today - timedelta(days=1)).isoformat()}"),
        ("authoredon", f"le{today.isoformat()}"),
    ]
    assert (await prescriber.get("/fhir/MedicationRequest", params=window)).json()["total"] == 2
    future = await prescriber.get(
        "/fhir/MedicationRequest",
        params={"authoredon": f"gt{(today + timedelta(days=1)).isoformat()}"},
    )
    assert future.json()["total"] == 0


async def test_paging_follows_next_links_without_gaps_or_repeats(
    prescriber: httpx.AsyncClient,
) -> None:
    created = {(await create(prescriber)).json()["id"] for _ in range(7)}
    seen: list[str] = []
    url: str | None = "/fhir/MedicationRequest?_count=3"
    pages = 0
    while url:
        bundle = (await prescriber.get(url)).json()
        assert bundle["total"] == 7
        seen.extend(e["resource"]["id"] for e in bundle["entry"])
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
        pages += 1
    assert pages == 3
    assert len(seen) == 7
    assert set(seen) == created


async def test_bad_search_parameters_are_400(prescriber: httpx.AsyncClient) -> None:
    for params in (
        {"colour": "red"},
        {"status": "shiny"},
        {"authoredon": "yesterday"},
        {"_count": "-1"},
        {"patient:identifier": f"{systems.SSIN}|85073003329"},
        {"identifier": "not-a-rid"},
        {"_cursor": "!!!"},
    ):
        response = await prescriber.get("/fhir/MedicationRequest", params=params)
        assert response.status_code == 400, params
        assert response.json()["resourceType"] == "OperationOutcome"


async def test_capability_statement_needs_no_authentication(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/fhir/metadata")
    assert response.status_code == 200
    statement = response.json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    security = statement["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    (uris,) = security["extension"]
    assert uris["extension"][0]["valueUri"].endswith("/oauth/token")
    (resource,) = [r for r in statement["rest"][0]["resource"] if r["type"] == "MedicationRequest"]
    assert {i["code"] for i in resource["interaction"]} == {
        "create",
        "read",
        "vread",
        "history-instance",
        "search-type",
    }
    assert resource["conditionalCreate"] is True
    assert {p["name"] for p in resource["searchParam"]} >= {
        "identifier",
        "patient",
        "status",
        "authoredon",
    }


async def test_conditional_create_as_fhirpy_sends_it_in_the_query(
    prescriber: httpx.AsyncClient,
) -> None:
    """fhirpy's ``create(identifier=...)`` puts the condition in the URL's query, no header."""
    body = medication_request(identifier=[{"system": "urn:example:his", "value": "rx-query"}])
    condition = {"identifier": "urn:example:his|rx-query", "_format": "json"}
    first = await prescriber.post(
        "/fhir/MedicationRequest", params=condition, json=body, headers=FHIR_JSON
    )
    again = await prescriber.post(
        "/fhir/MedicationRequest", params=condition, json=body, headers=FHIR_JSON
    )
    assert (first.status_code, again.status_code) == (201, 200), again.text
    assert again.json()["id"] == first.json()["id"]
