"""Visibility (docs/architecture.md 4c; domain RX-13, RX-14, RX-9, RX-17): the patient chooses which
pharmacies and which other prescribers see a prescription in searches by patient. A hidden one is
absent from those searches and from their total, and stays reachable by its RID."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from fhir_profiles import systems
from tests.consents.conftest import OTHER_PHARMACY_NIHDI
from tests.consents.factories import (
    RX_URL,
    SSIN,
    created,
    eid_headers,
    informed_consent,
    last_audit,
    prescription,
    reason_of,
    relationship,
)
from tests.fixtures.auth import OTHER_PRESCRIBER_NIHDI, PHARMACY_NIHDI
from tests.fixtures.fhir import FHIR_JSON, rid_of

BY_PATIENT = {"patient:identifier": f"{systems.SSIN}|{SSIN}"}
VISIBILITY = "urn:ehealth-gateway:extension:visibility"


def choice(
    pharmacies: str | None = None, prescribers: str | None = None, pharmacy: str | None = None
) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = []
    if pharmacies:
        parameters.append({"name": "pharmacies", "valueCode": pharmacies})
    if pharmacy:
        parameters.append(
            {
                "name": "pharmacy",
                "valueIdentifier": {"system": systems.NIHDI_ORGANIZATION, "value": pharmacy},
            }
        )
    if prescribers:
        parameters.append({"name": "prescribers", "valueCode": prescribers})
    return {"resourceType": "Parameters", "parameter": parameters}


async def set_visibility(
    client: httpx.AsyncClient, logical_id: str, body: dict[str, Any]
) -> httpx.Response:
    return await client.post(f"{RX_URL}/{logical_id}/$set-visibility", json=body, headers=FHIR_JSON)


async def ids(client: httpx.AsyncClient, **headers: str) -> tuple[int, set[str]]:
    """The total and the ids a search by patient matched (not its OperationOutcome, RX-14)."""
    response = await client.get(RX_URL, params=BY_PATIENT, headers=headers)
    assert response.status_code == 200, response.text
    bundle = response.json()
    matched = [e for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]
    return bundle["total"], {e["resource"]["id"] for e in matched}


async def test_RX_13_hidden_from_pharmacies_absent_from_search_and_total_but_fetched_by_rid(
    app: FastAPI, author: httpx.AsyncClient, pharmacy: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    shown = await prescription(author)
    hidden = await prescription(author)
    await created(patient, informed_consent(proof=False))
    response = await set_visibility(patient, hidden["id"], choice(pharmacies="none"))
    assert response.status_code == 200, response.text
    assert (await last_audit(app)).reason == "permit-patient-self"

    assert await ids(pharmacy, **eid_headers()) == (1, {shown["id"]})
    by_rid = await pharmacy.get(RX_URL, params={"identifier": rid_of(hidden)})
    assert by_rid.status_code == 200
    assert [e["resource"]["id"] for e in by_rid.json()["entry"]] == [hidden["id"]]
    assert (await last_audit(app)).reason == "permit-rid"


async def test_RX_13_paging_counts_only_what_the_pharmacy_may_see(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    written = [await prescription(author) for _ in range(5)]
    await created(patient, informed_consent(proof=False))
    for hidden in written[::2]:
        assert (
            await set_visibility(patient, hidden["id"], choice(pharmacies="none"))
        ).status_code == 200
    seen: list[str] = []
    response = await pharmacy.get(
        RX_URL, params={**BY_PATIENT, "_count": "1"}, headers=eid_headers()
    )
    while True:
        bundle = response.json()
        assert bundle["total"] == 2
        seen.extend(e["resource"]["id"] for e in bundle["entry"])
        following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not following:
            break
        response = await pharmacy.get(following[0], headers=eid_headers())
    assert sorted(seen) == sorted(w["id"] for w in written[1::2])


async def test_RX_13_one_named_pharmacy(
    author: httpx.AsyncClient,
    pharmacy: httpx.AsyncClient,
    other_pharmacy: httpx.AsyncClient,
    patient: httpx.AsyncClient,
) -> None:
    written = await prescription(author)
    await created(patient, informed_consent(proof=False))
    response = await set_visibility(
        patient, written["id"], choice(pharmacies="one", pharmacy=PHARMACY_NIHDI)
    )
    assert response.status_code == 200
    extension = next(e for e in response.json()["extension"] if e["url"] == VISIBILITY)
    parts = {p["url"]: p for p in extension["extension"]}
    assert parts["pharmacies"]["valueCode"] == "one"
    assert parts["pharmacy"]["valueIdentifier"]["value"] == PHARMACY_NIHDI
    assert parts["prescribers"]["valueCode"] == "open"
    assert response.headers["etag"] == 'W/"2"'

    assert await ids(pharmacy, **eid_headers()) == (1, {written["id"]})
    assert await ids(other_pharmacy, **eid_headers()) == (0, set())
    # RX-13: the RID overrides the flag, for any pharmacy.
    by_rid = await other_pharmacy.get(RX_URL, params={"identifier": rid_of(written)})
    assert by_rid.json()["total"] == 1
    assert OTHER_PHARMACY_NIHDI  # the other pharmacy is a real, distinct one


async def test_RX_14_closed_is_refused_to_another_physician_with_consent_and_relationship(
    app: FastAPI,
    author: httpx.AsyncClient,
    colleague: httpx.AsyncClient,
    patient: httpx.AsyncClient,
) -> None:
    closed = await prescription(author)
    open_one = await prescription(author)
    await created(patient, informed_consent(proof=False))
    await created(colleague, relationship(OTHER_PRESCRIBER_NIHDI))
    assert (
        await set_visibility(patient, closed["id"], choice(prescribers="closed"))
    ).status_code == 200

    assert reason_of(await colleague.get(f"{RX_URL}/{closed['id']}")) == "hidden-by-patient"
    row = await last_audit(app)
    assert (row.outcome, row.reason, row.resource_id) == ("deny", "hidden-by-patient", closed["id"])
    opened = await colleague.get(f"{RX_URL}/{open_one['id']}")
    assert opened.status_code == 200
    assert (await last_audit(app)).reason == "permit-relationship"
    assert await ids(colleague) == (1, {open_one["id"]})
    # The author always reads his own (docs/architecture.md 5).
    assert (await author.get(f"{RX_URL}/{closed['id']}")).status_code == 200
    assert await ids(author) == (2, {closed["id"], open_one["id"]})


async def test_RX_14_the_author_sets_open_or_closed_at_the_patients_request(
    author: httpx.AsyncClient, colleague: httpx.AsyncClient, pharmacy: httpx.AsyncClient
) -> None:
    written = await prescription(author)
    assert (
        await set_visibility(author, written["id"], choice(prescribers="closed"))
    ).status_code == 200
    assert (
        await set_visibility(author, written["id"], choice(pharmacies="none"))
    ).status_code == 200
    # RX-13: only the patient chooses one pharmacy.
    one = choice(pharmacies="one", pharmacy=PHARMACY_NIHDI)
    assert reason_of(await set_visibility(author, written["id"], one)) == "wrong-role"
    assert (
        reason_of(await set_visibility(colleague, written["id"], choice(prescribers="open")))
        == "not-author"
    )
    refused = await set_visibility(pharmacy, written["id"], choice(prescribers="open"))
    assert refused.status_code == 403  # no update scope on prescriptions: refused before deciding


async def test_RX_14_a_part_left_out_keeps_its_value(
    author: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    written = await prescription(author)
    await set_visibility(patient, written["id"], choice(pharmacies="one", pharmacy=PHARMACY_NIHDI))
    # The author closing it to prescribers does not "choose one pharmacy" (RX-13).
    response = await set_visibility(author, written["id"], choice(prescribers="closed"))
    assert response.status_code == 200, response.text
    extension = next(e for e in response.json()["extension"] if e["url"] == VISIBILITY)
    parts = {p["url"]: p for p in extension["extension"]}
    assert parts["pharmacies"]["valueCode"] == "one"
    assert parts["prescribers"]["valueCode"] == "closed"


async def test_set_visibility_checks_its_parameters(
    author: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    written = await prescription(author)
    for body in (
        choice(),
        choice(pharmacies="some"),
        choice(pharmacies="one"),
        choice(pharmacies="all", pharmacy=PHARMACY_NIHDI),
        {"resourceType": "Parameters", "parameter": [{"name": "colour", "valueCode": "red"}]},
        {"resourceType": "Bundle"},
    ):
        response = await set_visibility(patient, written["id"], body)
        assert response.status_code == 400, body
    assert (
        await set_visibility(patient, "no-such-id", choice(prescribers="closed"))
    ).status_code == 404


async def test_the_visibility_is_the_gateways_a_client_cannot_send_it(
    author: httpx.AsyncClient,
) -> None:
    from tests.fhir_profiles.factories import medication_request

    body = medication_request()
    body["extension"] = [
        {"url": VISIBILITY, "extension": [{"url": "pharmacies", "valueCode": "none"}]}
    ]
    response = await author.post(RX_URL, json=body, headers=FHIR_JSON)
    # Refused, not dropped: the prescriber must not believe the prescription is hidden.
    assert response.status_code == 422
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["MedicationRequest.extension[0]"]
    assert issue["details"]["coding"][0]["code"] == "RX-13"


async def test_PO_4_a_patient_sets_only_his_own_prescriptions(
    author: httpx.AsyncClient, client_for: Any
) -> None:
    from tests.consents.factories import OTHER_SSIN

    written = await prescription(author)
    stranger = await client_for("patient", ssin=OTHER_SSIN)
    assert (
        reason_of(await set_visibility(stranger, written["id"], choice(prescribers="closed")))
        == "not-own-data"
    )
