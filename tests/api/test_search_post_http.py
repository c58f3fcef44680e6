"""``POST [type]/_search`` (FHIR R4 http.html#search): the same results, decision and audit as the
GET, with the parameters (an SSIN) in a form body instead of the URL, and paging links that carry
them sealed, never in clear."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from fhir_profiles import systems
from tests.consents.factories import SSIN, audit_rows, last_audit, prescription
from tests.fixtures.fhir import FHIR_JSON

FORM = {"Content-Type": "application/x-www-form-urlencoded", **FHIR_JSON}
BY_PATIENT = {"patient:identifier": f"{systems.SSIN}|{SSIN}"}


def ids(bundle: dict[str, object]) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", [])]  # type: ignore[attr-defined,index]


async def test_a_search_by_post_answers_and_is_audited_as_the_get(
    app: FastAPI, author: httpx.AsyncClient
) -> None:
    written = [(await prescription(author))["id"] for _ in range(2)]
    by_get = await author.get("/fhir/MedicationRequest", params=BY_PATIENT)
    get_audit = await last_audit(app)
    rows = len(await audit_rows(app))
    by_post = await author.post("/fhir/MedicationRequest/_search", data=BY_PATIENT, headers=FORM)
    assert by_post.status_code == 200, by_post.text
    assert by_post.headers["content-type"].startswith("application/fhir+json")
    assert sorted(ids(by_post.json())) == sorted(ids(by_get.json())) == sorted(written)
    post_audit = await last_audit(app)
    assert (post_audit.action, post_audit.outcome, post_audit.reason) == (
        get_audit.action,
        get_audit.outcome,
        get_audit.reason,
    )
    assert len(await audit_rows(app)) == rows + 1


async def test_the_paging_links_of_a_post_search_never_show_the_ssin(
    author: httpx.AsyncClient,
) -> None:
    written = {(await prescription(author))["id"] for _ in range(5)}
    page = await author.post(
        "/fhir/MedicationRequest/_search?_count=2", data=BY_PATIENT, headers=FORM
    )
    seen = ids(page.json())
    while True:
        links = {link["relation"]: link["url"] for link in page.json()["link"]}
        assert all(SSIN not in url and "patient" not in url for url in links.values()), links
        if "next" not in links:
            break
        assert "_query" in parse_qs(urlsplit(links["next"]).query)
        page = await author.get(links["next"])
        assert page.status_code == 200, page.text
        assert page.json()["total"] == 5
        seen += ids(page.json())
    assert sorted(seen) == sorted(written)


async def test_url_and_body_parameters_combine(author: httpx.AsyncClient) -> None:
    await prescription(author)
    none_active = await author.post(
        "/fhir/MedicationRequest/_search?status=cancelled", data=BY_PATIENT, headers=FORM
    )
    assert none_active.status_code == 200
    assert none_active.json()["total"] == 0


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("MedicationDispense", BY_PATIENT),
        ("Consent", BY_PATIENT),
        ("Claim", BY_PATIENT),
        ("ClaimResponse", BY_PATIENT),
        ("AuditEvent", {}),
    ],
)
async def test_every_searchable_type_takes_post(
    patient: httpx.AsyncClient, path: str, params: dict[str, str]
) -> None:
    by_get = await patient.get(f"/fhir/{path}", params=params)
    by_post = await patient.post(f"/fhir/{path}/_search", data=params, headers=FORM)
    assert by_get.status_code == 200, by_get.text
    assert by_post.status_code == 200, by_post.text
    # The same matches (a search of AuditEvent is itself audited: the GET's is one more match).
    assert set(ids(by_get.json())) <= set(ids(by_post.json()))
    assert by_post.json()["total"] - by_get.json()["total"] == (path == "AuditEvent")


async def test_bad_post_searches_are_4xx_outcomes(author: httpx.AsyncClient) -> None:
    as_json = await author.post("/fhir/MedicationRequest/_search", json=BY_PATIENT)
    assert as_json.status_code == 415
    assert as_json.json()["resourceType"] == "OperationOutcome"
    unknown = await author.post(
        "/fhir/MedicationRequest/_search", data={"colour": "blue"}, headers=FORM
    )
    assert unknown.status_code == 400
    assert unknown.json()["issue"][0]["expression"] == ["colour"]
    forged = await author.get("/fhir/MedicationRequest", params={"_query": "bm90LWEtdG9rZW4"})
    assert forged.status_code == 400
    assert forged.json()["issue"][0]["expression"] == ["_query"]
