"""Informed consent and exclusions as FHIR Consent (docs/architecture.md 4c; domain CO-1..CO-4, CO-10)."""

from __future__ import annotations

from datetime import timedelta

import httpx
from fastapi import FastAPI

from tests.consents.factories import (
    OTHER_SSIN,
    RX_URL,
    SSIN,
    URL,
    created,
    eid,
    eid_headers,
    exclusion,
    informed_consent,
    last_audit,
    now,
    post,
    prescription,
    reason_of,
    relationship,
)
from tests.fixtures.auth import OTHER_PRESCRIBER_NIHDI
from tests.fixtures.fhir import FHIR_JSON


async def test_CO_2_a_provider_registers_consent_with_the_eid_read(
    app: FastAPI, author: httpx.AsyncClient
) -> None:
    response = await post(author, informed_consent())
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"].endswith(f"/fhir/Consent/{body['id']}/_history/1")
    assert body["status"] == "active"
    assert body["scope"]["coding"][0]["code"] == "patient-privacy"
    assert body["provision"]["type"] == "permit"
    assert body["verification"][0]["verifiedWith"]["identifier"]["value"]  # the evidence stays
    row = await last_audit(app)
    assert (row.action, row.outcome, row.reason, row.resource_id) == (
        "create",
        "permit",
        "permit-presence",
        body["id"],
    )


async def test_CO_2_without_the_eid_read_a_provider_is_refused(
    app: FastAPI, author: httpx.AsyncClient
) -> None:
    assert reason_of(await post(author, informed_consent(proof=False))) == "no-presence"
    stale = informed_consent(verification=eid(read_at=now() - timedelta(hours=13)))
    assert reason_of(await post(author, stale)) == "no-presence"
    row = await last_audit(app)
    assert (row.action, row.outcome, row.reason) == ("create", "deny", "no-presence")


async def test_CO_2_the_patient_registers_his_own_consent_only(
    patient: httpx.AsyncClient,
) -> None:
    assert (await post(patient, informed_consent(proof=False))).status_code == 201
    other = await post(patient, informed_consent(OTHER_SSIN, proof=False))
    assert reason_of(other) == "not-own-data"


async def test_CO_4_one_active_consent_withdrawal_keeps_the_history(
    app: FastAPI,
    patient: httpx.AsyncClient,
    author: httpx.AsyncClient,
    colleague: httpx.AsyncClient,
) -> None:
    given = await created(patient, informed_consent(proof=False))
    again = await post(patient, informed_consent(proof=False))
    assert again.status_code == 409

    written = await prescription(author)
    await created(colleague, relationship(OTHER_PRESCRIBER_NIHDI))
    assert (await colleague.get(f"{RX_URL}/{written['id']}")).status_code == 200

    withdrawn = await patient.put(
        f"{URL}/{given['id']}", json={**given, "status": "inactive"}, headers=FHIR_JSON
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "inactive"
    assert withdrawn.headers["etag"] == 'W/"2"'
    assert (await last_audit(app)).action == "update"
    # CO-3: withdrawing ends sharing for every provider.
    assert reason_of(await colleague.get(f"{RX_URL}/{written['id']}")) == "no-consent"

    # CO-4: withdrawing twice changes nothing; an inactive one is not re-activated.
    twice = await patient.put(
        f"{URL}/{given['id']}", json={**given, "status": "inactive"}, headers=FHIR_JSON
    )
    assert twice.headers["etag"] == 'W/"2"'
    revive = await patient.put(
        f"{URL}/{given['id']}", json={**given, "status": "active"}, headers=FHIR_JSON
    )
    assert revive.status_code == 409

    history = (await patient.get(f"{URL}/{given['id']}/_history")).json()
    assert [e["resource"]["status"] for e in history["entry"]] == ["inactive", "active"]
    assert (await post(patient, informed_consent(proof=False))).status_code == 201


async def test_CO_10_exclusions_are_the_patients_alone(
    author: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    assert reason_of(await post(author, exclusion(OTHER_PRESCRIBER_NIHDI))) == "wrong-role"
    made = await created(patient, exclusion(OTHER_PRESCRIBER_NIHDI))
    assert made["provision"]["type"] == "deny"
    duplicate = await post(patient, exclusion(OTHER_PRESCRIBER_NIHDI))
    assert duplicate.status_code == 409


async def test_CO_10_lifting_an_exclusion_restores_access(
    author: httpx.AsyncClient, colleague: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    written = await prescription(author)
    await created(patient, informed_consent(proof=False))
    await created(colleague, relationship(OTHER_PRESCRIBER_NIHDI))
    barred = await created(patient, exclusion(OTHER_PRESCRIBER_NIHDI))
    assert reason_of(await colleague.get(f"{RX_URL}/{written['id']}")) == "excluded"
    lifted = await patient.put(
        f"{URL}/{barred['id']}", json={**barred, "status": "inactive"}, headers=FHIR_JSON
    )
    assert lifted.status_code == 200
    assert (await colleague.get(f"{RX_URL}/{written['id']}")).status_code == 200
    # and the provider may be excluded again
    assert (await post(patient, exclusion(OTHER_PRESCRIBER_NIHDI))).status_code == 201


async def test_CO_10_an_excluded_provider_cannot_register_for_the_patient(
    colleague: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    await created(patient, exclusion(OTHER_PRESCRIBER_NIHDI))
    assert reason_of(await post(colleague, relationship(OTHER_PRESCRIBER_NIHDI))) == "excluded"


async def test_CO_1_shapes_are_checked(patient: httpx.AsyncClient) -> None:
    bad = [
        informed_consent(category=None),
        informed_consent(patient={"identifier": {"system": "x", "value": SSIN}}),
        informed_consent(patient={"identifier": {"value": "12345678901"}}),
        informed_consent(status="draft"),
        informed_consent(dateTime="2025-01-01"),
        informed_consent(verification=[{"verified": True}]),
        exclusion("not-a-number"),
        {**exclusion(OTHER_PRESCRIBER_NIHDI), "provision": {"type": "permit"}},
        relationship(OTHER_PRESCRIBER_NIHDI, kind="friendship"),
    ]
    for body in bad:
        response = await post(patient, body)
        assert response.status_code == 422, body
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert SSIN not in response.text


async def test_CO_2_reading_a_consent_needs_presence_for_a_provider(
    author: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    given = await created(author, informed_consent())
    assert reason_of(await author.get(f"{URL}/{given['id']}")) == "no-presence"
    shown = await author.get(f"{URL}/{given['id']}", headers=eid_headers())
    assert shown.status_code == 200
    assert (await patient.get(f"{URL}/{given['id']}")).status_code == 200


async def test_consent_search_shows_what_each_caller_may_see(
    author: httpx.AsyncClient, colleague: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    from tests.fixtures.auth import PRESCRIBER_NIHDI

    await created(patient, informed_consent(proof=False))
    await created(author, relationship(PRESCRIBER_NIHDI))
    await created(colleague, relationship(OTHER_PRESCRIBER_NIHDI))
    await created(patient, exclusion("12345625004"[:8] + "999"))

    mine = (await patient.get(URL)).json()
    assert mine["total"] == 4
    by_patient = {"patient:identifier": SSIN}
    # A provider with the eID read: the consent and his own relationship, nothing else.
    seen = await author.get(URL, params=by_patient, headers=eid_headers())
    assert seen.status_code == 200
    bundle = seen.json()
    assert bundle["total"] == 2
    actors = [
        e["resource"]["provision"]
        .get("actor", [{}])[0]
        .get("reference", {})
        .get("identifier", {})
        .get("value")
        for e in bundle["entry"]
    ]
    assert sorted(filter(None, actors)) == [PRESCRIBER_NIHDI]
    assert reason_of(await author.get(URL, params=by_patient)) == "no-presence"
    only = await author.get(
        URL, params={**by_patient, "category": "exclusion"}, headers=eid_headers()
    )
    assert reason_of(only) == "wrong-role"
    active = await patient.get(
        URL, params={"category": "therapeutic-relationship", "status": "active"}
    )
    assert active.json()["total"] == 2
    by_actor = await patient.get(URL, params={"actor": OTHER_PRESCRIBER_NIHDI})
    assert by_actor.json()["total"] == 1
    assert (await patient.get(URL, params={"category": "nonsense"})).status_code == 400
