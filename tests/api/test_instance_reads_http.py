"""Read, vread and history are one path for every resource type (FHIR R4 http.html#read, #vread,
#history): the same answers, the same decision on the current version, the same audit. And an
update names its target in the body and honours If-Match even when it changes nothing
(http.html#update, #concurrency)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.consents.factories import URL, created, informed_consent, last_audit, prescription
from tests.dispenses.factories import MD_URL, dispense_rid, operation
from tests.fixtures.fhir import FHIR_JSON, rid_of


async def test_RX_7_a_dispense_has_a_history_and_earlier_versions(
    app: FastAPI, author: httpx.AsyncClient, pharmacy: httpx.AsyncClient
) -> None:
    rx = await prescription(author)
    md = (await dispense_rid(pharmacy, rid_of(rx))).json()
    assert (await operation(pharmacy, f"MedicationDispense/{md['id']}/$undo")).status_code == 200

    history = await pharmacy.get(f"{MD_URL}/{md['id']}/_history")
    assert history.status_code == 200, history.text
    bundle = history.json()
    assert bundle["type"] == "history"
    assert [e["resource"]["status"] for e in bundle["entry"]] == ["entered-in-error", "completed"]

    first = await pharmacy.get(f"{MD_URL}/{md['id']}/_history/1")
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "completed"
    assert first.headers["etag"] == 'W/"1"'
    row = await last_audit(app)
    assert (row.action, row.outcome, row.resource_id) == ("read", "permit", md["id"])

    assert (await pharmacy.get(f"{MD_URL}/{md['id']}/_history/3")).status_code == 404
    assert (await pharmacy.get(f"{MD_URL}/{md['id']}/_history/x1")).status_code == 404


async def test_RX_25_another_pharmacy_reads_no_version_of_a_dispense(
    app: FastAPI,
    author: httpx.AsyncClient,
    pharmacy: httpx.AsyncClient,
    other_pharmacy: httpx.AsyncClient,
) -> None:
    rx = await prescription(author)
    md = (await dispense_rid(pharmacy, rid_of(rx))).json()
    for path in ("", "/_history", "/_history/1"):
        refused = await other_pharmacy.get(f"{MD_URL}/{md['id']}{path}")
        assert refused.status_code == 403, path
        row = await last_audit(app)
        assert (row.action, row.outcome) == ("read", "deny")


async def test_update_without_the_url_id_in_the_body_is_400(patient: httpx.AsyncClient) -> None:
    given = await created(patient, informed_consent(proof=False))
    body = {k: v for k, v in given.items() if k != "id"} | {"status": "inactive"}
    missing = await patient.put(f"{URL}/{given['id']}", json=body, headers=FHIR_JSON)
    assert missing.status_code == 400, missing.text
    assert missing.json()["issue"][0]["expression"] == ["Consent.id"]
    other = await patient.put(
        f"{URL}/{given['id']}", json={**body, "id": "another"}, headers=FHIR_JSON
    )
    assert other.status_code == 400
    assert (await patient.get(f"{URL}/{given['id']}")).json()["status"] == "active"


async def test_a_stale_if_match_is_412_even_when_the_update_changes_nothing(
    patient: httpx.AsyncClient,
) -> None:
    given = await created(patient, informed_consent(proof=False))
    url = f"{URL}/{given['id']}"
    withdrawn = await patient.put(
        url, json={**given, "status": "inactive"}, headers={**FHIR_JSON, "If-Match": 'W/"1"'}
    )
    assert withdrawn.status_code == 200, withdrawn.text
    # The same withdrawal again, by a client still holding version 1: it lost a race it must see.
    stale = await patient.put(
        url, json={**given, "status": "inactive"}, headers={**FHIR_JSON, "If-Match": 'W/"1"'}
    )
    assert stale.status_code == 412, stale.text
    current = await patient.put(
        url, json={**given, "status": "inactive"}, headers={**FHIR_JSON, "If-Match": 'W/"2"'}
    )
    assert current.status_code == 200
    assert current.headers["etag"] == 'W/"2"'


async def test_dispenses_by_prescription_in_every_reference_form(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient
) -> None:
    """FHIR R4 search.html#reference: ``Type/id``, the id, this server's absolute URL."""
    rx = await prescription(author)
    md = (await dispense_rid(pharmacy, rid_of(rx))).json()
    for form in (
        f"MedicationRequest/{rx['id']}",
        rx["id"],
        f"http://gateway.test/fhir/MedicationRequest/{rx['id']}",
    ):
        found = await pharmacy.get(MD_URL, params={"prescription": form})
        assert found.status_code == 200, (form, found.text)
        assert [e["resource"]["id"] for e in found.json()["entry"]] == [md["id"]], form
    foreign = f"http://elsewhere.example/fhir/MedicationRequest/{rx['id']}"
    refused = await pharmacy.get(MD_URL, params={"prescription": foreign})
    assert refused.status_code == 400
    assert refused.json()["issue"][0]["expression"] == ["prescription"]
