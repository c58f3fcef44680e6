"""Reservations (issue 16, item 3; domain RX-15): the patient reserves an open prescription at a
pharmacy he chooses (``$reserve``) and cancels the reservation (``$release``, his own reservations
only); the pharmacy lists the reservations made at it with ``MedicationRequest?reserved-at=<its
organisation NIHDI>``, whoever the patient, and only its own: another pharmacy's list answers
like an empty one (not-yours = not-there, as for searches by identifier)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from fhir_profiles import systems
from tests.consents.factories import (
    OTHER_SSIN,
    RX_URL,
    audit_rows,
    created,
    exclusion,
    last_audit,
    prescription,
)
from tests.dispenses.factories import (
    dispense_rid,
    operation,
    outcome_text,
    parameters,
    state_of,
)
from tests.fixtures.access import OTHER_PHARMACY_NIHDI
from tests.fixtures.app import ClientFactory
from tests.fixtures.auth import PHARMACY_NIHDI
from tests.fixtures.clock import Clock
from tests.fixtures.fhir import rid_of


async def reserve(patient: httpx.AsyncClient, rx_id: str, at: str = PHARMACY_NIHDI) -> None:
    path = f"MedicationRequest/{rx_id}/$reserve"
    response = await operation(patient, path, parameters(pharmacy=at))
    assert response.status_code == 200, response.text


async def cancel(patient: httpx.AsyncClient, rx_id: str) -> httpx.Response:
    return await operation(patient, f"MedicationRequest/{rx_id}/$release")


async def reservations(
    client: httpx.AsyncClient, at: str = PHARMACY_NIHDI, **params: str
) -> dict[str, Any]:
    response = await client.get(RX_URL, params={"reserved-at": at, **params})
    assert response.status_code == 200, response.text
    bundle: dict[str, Any] = response.json()
    return bundle


def ids(bundle: dict[str, Any]) -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry", [])}


async def test_RX_15_a_pharmacy_lists_the_reservations_made_at_it(
    app: FastAPI,
    client_for: ClientFactory,
    author: httpx.AsyncClient,
    pharmacy: httpx.AsyncClient,
    patient: httpx.AsyncClient,
) -> None:
    other_patient = await client_for("patient", ssin=OTHER_SSIN)
    mine = await prescription(author)
    hidden = await prescription(author)
    theirs = await prescription(author, ssin=OTHER_SSIN)
    elsewhere = await prescription(author)
    taken = await prescription(author)
    await prescription(author)  # open, not reserved
    # The patient hid this one from every pharmacy's search by patient (RX-13), then reserved it:
    # the reservation names the pharmacy, so it sees it.
    visibility = parameters(pharmacies="none")
    hide = await operation(patient, f"MedicationRequest/{hidden['id']}/$set-visibility", visibility)
    assert hide.status_code == 200, hide.text
    for rx in (mine, hidden):
        await reserve(patient, rx["id"])
    await reserve(other_patient, theirs["id"])
    await reserve(patient, elsewhere["id"], at=OTHER_PHARMACY_NIHDI)
    # Taken in process by the pharmacy itself: not a reservation.
    path = f"MedicationRequest/{taken['id']}/$take-in-process"
    assert (await operation(pharmacy, path, parameters(rid=rid_of(taken)))).status_code == 200

    # No consent, relationship or eID read: the patient chose this pharmacy.
    listed = await reservations(pharmacy)
    assert ids(listed) == {mine["id"], hidden["id"], theirs["id"]}
    assert listed["total"] == 3
    for entry in listed["entry"]:
        shown = entry["resource"]
        assert state_of(shown) == "in-process"
        assert "medicationCodeableConcept" in shown  # the content, to prepare the medicines
        reservation = next(
            e for e in shown["extension"] if e["url"] == "urn:ehealth-gateway:extension:lifecycle"
        )
        assert {"url": "reservation", "valueBoolean": True} in reservation["extension"]
    audited = await last_audit(app)
    assert (audited.action, audited.outcome, audited.reason) == (
        "search",
        "permit",
        "permit-reservation",
    )
    # The same with the organisation NIHDI system, and narrowed like any search.
    with_system = await reservations(pharmacy, f"{systems.NIHDI_ORGANIZATION}|{PHARMACY_NIHDI}")
    assert ids(with_system) == ids(listed)
    assert ids(await reservations(pharmacy, _id=theirs["id"])) == {theirs["id"]}


async def test_RX_15_another_pharmacys_reservations_answer_like_none(
    app: FastAPI,
    author: httpx.AsyncClient,
    other_pharmacy: httpx.AsyncClient,
    patient: httpx.AsyncClient,
) -> None:
    rx = await prescription(author)
    await reserve(patient, rx["id"])
    assert (await audit_rows(app))[-1].reason == "permit-patient-self"
    peeked = await reservations(other_pharmacy)  # PHARMACY_NIHDI's list, asked by another
    assert (peeked["total"], peeked.get("entry")) == (0, None)
    refusal = await last_audit(app)
    assert (refusal.action, refusal.outcome, refusal.reason) == ("search", "deny", "not-own-data")
    nothing_reserved = await reservations(other_pharmacy, OTHER_PHARMACY_NIHDI)
    assert nothing_reserved["total"] == 0


async def test_RX_15_a_reservation_leaves_the_list_when_it_ends(
    clock: Clock,
    author: httpx.AsyncClient,
    pharmacy: httpx.AsyncClient,
    patient: httpx.AsyncClient,
) -> None:
    cancelled, dispensed, expiring = [await prescription(author) for _ in range(3)]
    for rx in (cancelled, dispensed, expiring):
        await reserve(patient, rx["id"])
    assert ids(await reservations(pharmacy)) == {cancelled["id"], dispensed["id"], expiring["id"]}

    released = await cancel(patient, cancelled["id"])
    assert released.status_code == 200, released.text
    assert state_of(released.json()) == "open"
    assert (await dispense_rid(pharmacy, rid_of(dispensed))).status_code == 201
    assert ids(await reservations(pharmacy)) == {expiring["id"]}
    # Reserving again after cancelling, at another pharmacy, is that pharmacy's reservation.
    await reserve(patient, cancelled["id"], at=OTHER_PHARMACY_NIHDI)
    assert ids(await reservations(pharmacy)) == {expiring["id"]}

    clock.now = clock() + timedelta(days=100)  # past the default validity (RX-10)
    assert ids(await reservations(pharmacy)) == set()


async def test_RX_15_the_patient_cancels_his_reservation_not_a_pharmacys_work(
    author: httpx.AsyncClient,
    pharmacy: httpx.AsyncClient,
    other_pharmacy: httpx.AsyncClient,
    patient: httpx.AsyncClient,
) -> None:
    rx = await prescription(author)
    path, rid = f"MedicationRequest/{rx['id']}", parameters(rid=rid_of(rx))
    assert (await operation(pharmacy, f"{path}/$take-in-process", rid)).status_code == 200
    refused = await cancel(patient, rx["id"])
    assert refused.status_code == 409
    assert outcome_text(refused) == (
        "cannot release this prescription: it is in process at a pharmacy, not reserved"
    )
    again = await operation(patient, f"{path}/$reserve", parameters(pharmacy=OTHER_PHARMACY_NIHDI))
    assert again.status_code == 409
    assert (await operation(pharmacy, f"{path}/$release", rid)).status_code == 200

    # A reservation: the patient ends it; twice is a 409; the reserved-at pharmacy may end it too.
    await reserve(patient, rx["id"], at=OTHER_PHARMACY_NIHDI)
    assert (await cancel(patient, rx["id"])).status_code == 200
    twice = await cancel(patient, rx["id"])
    assert twice.status_code == 409
    assert outcome_text(twice) == "cannot release this prescription: it is open"
    await reserve(patient, rx["id"], at=OTHER_PHARMACY_NIHDI)
    assert (await operation(other_pharmacy, f"{path}/$release", rid)).status_code == 200


async def test_RX_15_reserved_at_narrows_the_patients_and_the_prescribers_own_search(
    author: httpx.AsyncClient, colleague: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    reserved, other = await prescription(author), await prescription(author)
    await reserve(patient, reserved["id"])
    assert ids(await reservations(patient)) == {reserved["id"]}
    assert ids(await reservations(patient, OTHER_PHARMACY_NIHDI)) == set()
    assert ids(await reservations(author)) == {reserved["id"]}
    assert ids(await reservations(colleague)) == set()  # his own only
    assert other["id"] not in ids(await reservations(author))


async def test_reserved_at_takes_an_organisation_nihdi(pharmacy: httpx.AsyncClient) -> None:
    for value in ("abc", "123", f"{systems.SSIN}|{PHARMACY_NIHDI}", f"{systems.NIHDI}|"):
        response = await pharmacy.get(RX_URL, params={"reserved-at": value})
        assert response.status_code == 400, value
        issue = response.json()["issue"][0]
        assert issue["expression"] == ["reserved-at"]
        assert "reserved-at" in issue["diagnostics"]
    twice = await pharmacy.get(
        RX_URL, params=[("reserved-at", PHARMACY_NIHDI), ("reserved-at", PHARMACY_NIHDI)]
    )
    assert twice.status_code == 400


async def test_RX_15_CO_10_no_reservation_at_a_pharmacy_the_patient_excluded(
    app: FastAPI, author: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    rx = await prescription(author)
    await created(patient, exclusion(PHARMACY_NIHDI))
    path = f"MedicationRequest/{rx['id']}/$reserve"
    refused = await operation(patient, path, parameters(pharmacy=PHARMACY_NIHDI))
    assert refused.status_code == 409, refused.text
    assert refused.json()["issue"][0]["expression"] == ["Parameters.parameter.pharmacy"]
    row = await last_audit(app)
    assert (row.action, row.outcome, row.reason) == ("operation", "deny", "excluded")
    assert state_of((await patient.get(f"{RX_URL}/{rx['id']}")).json()) == "open"  # unchanged
    await reserve(patient, rx["id"], at=OTHER_PHARMACY_NIHDI)
    assert state_of((await patient.get(f"{RX_URL}/{rx['id']}")).json()) == "in-process"
