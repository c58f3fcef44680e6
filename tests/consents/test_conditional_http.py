"""Conditional create and conditional update of Consent (FHIR R4 http.html#ccreate,
#cond-update): a patient's software that retries a registration, or withdraws by its own
identifier, without keeping the server's id. The condition is a search run as the caller's own."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from fhir_profiles import systems
from tests.consents.factories import SSIN, URL, exclusion, informed_consent
from tests.fixtures.auth import OTHER_PRESCRIBER_NIHDI
from tests.fixtures.fhir import FHIR_JSON

HIS = "urn:example:patient-app"


def consent(value: str) -> dict[str, Any]:
    return informed_consent(proof=False, identifier=[{"system": HIS, "value": value}])


async def test_CO_4_a_retried_registration_answers_with_the_first(
    patient: httpx.AsyncClient,
) -> None:
    body = consent("c-1")
    header = {**FHIR_JSON, "If-None-Exist": f"identifier={HIS}|c-1"}
    first = await patient.post(URL, json=body, headers=header)
    assert first.status_code == 201, first.text
    again = await patient.post(URL, json=body, headers=header)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    # fhirpy's create(identifier=...): the condition as the URL's query, no header.
    as_query = await patient.post(
        URL, params={"identifier": f"{HIS}|c-1"}, json=body, headers=FHIR_JSON
    )
    assert as_query.status_code == 200, as_query.text
    assert as_query.json()["id"] == first.json()["id"]


async def test_CO_4_racing_retries_make_one_consent(patient: httpx.AsyncClient) -> None:
    header = {**FHIR_JSON, "If-None-Exist": f"identifier={HIS}|c-race"}
    answers = await asyncio.gather(
        *(patient.post(URL, json=consent("c-race"), headers=header) for _ in range(5))
    )
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 200, 201]
    assert len({a.json()["id"] for a in answers}) == 1


async def test_conditional_update_withdraws_the_one_match(patient: httpx.AsyncClient) -> None:
    given = (await patient.post(URL, json=consent("c-2"), headers=FHIR_JSON)).json()
    withdrawn = await patient.put(
        URL,
        params={"identifier": f"{HIS}|c-2"},
        json={**consent("c-2"), "status": "inactive"},
        headers=FHIR_JSON,
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["id"] == given["id"]
    assert withdrawn.json()["status"] == "inactive"
    wrong_id = await patient.put(
        URL,
        params={"identifier": f"{HIS}|c-2"},
        json={**consent("c-2"), "id": "someone-else", "status": "inactive"},
        headers=FHIR_JSON,
    )
    assert wrong_id.status_code == 400


async def test_conditional_update_creates_when_nothing_matches(patient: httpx.AsyncClient) -> None:
    created = await patient.put(
        URL, params={"identifier": f"{HIS}|c-new"}, json=consent("c-new"), headers=FHIR_JSON
    )
    assert created.status_code == 201, created.text
    assert created.headers["location"].endswith(f"/Consent/{created.json()['id']}/_history/1")
    with_id = await patient.put(
        URL,
        params={"identifier": f"{HIS}|c-none"},
        json={**consent("c-none"), "id": "chosen-by-client"},
        headers=FHIR_JSON,
    )
    assert with_id.status_code == 400


async def test_conditional_update_with_several_matches_is_412(patient: httpx.AsyncClient) -> None:
    await patient.post(URL, json=consent("c-3"), headers=FHIR_JSON)
    await patient.post(URL, json=exclusion(OTHER_PRESCRIBER_NIHDI), headers=FHIR_JSON)
    several = await patient.put(
        URL,
        params={"patient:identifier": f"{systems.SSIN}|{SSIN}"},
        json={**consent("c-3"), "status": "inactive"},
        headers=FHIR_JSON,
    )
    assert several.status_code == 412, several.text
    without_query = await patient.put(URL, json=consent("c-4"), headers=FHIR_JSON)
    assert without_query.status_code == 405
