"""Mandates over HTTP (RX-16, PO-4; issue 16 item 1): a patient lets a proxy (by SSIN) or a nursing
home's pharmacy (by organisation NIHDI) act for him, for what the mandate grants, while it runs.
The access matrix for holders: allowed, expired, out of scope, ended, another patient's holder."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fhir_profiles import systems
from tests.consents.factories import (
    OTHER_SSIN,
    RX_URL,
    SSIN,
    URL,
    _consent,
    audit_rows,
    created,
    exclusion,
    patient_hash,
    post,
    prescription,
    reason_of,
)
from tests.dispenses.factories import revoke
from tests.fixtures.app import ClientFactory
from tests.fixtures.clock import Clock
from tests.fixtures.fhir import FHIR_JSON

HOLDER = OTHER_SSIN  # the neighbour who collects for the patient
STRANGER = "70010100188"  # a third patient, holding nothing
ACTION = "urn:ehealth-gateway:mandate-action"
NURSING_HOME_PHARMACY = "06077777"


def mandate(
    *actions: str,
    holder: str = HOLDER,
    system: str = systems.SSIN,
    ssin: str = SSIN,
    **overrides: Any,
) -> dict[str, Any]:
    body = _consent("mandate", ssin, **overrides)
    body["provision"] = {
        "type": "permit",
        "actor": [{"reference": {"identifier": {"system": system, "value": holder}}}],
        **body.get("provision", {}),
    }
    if actions:
        body["provision"]["action"] = [{"coding": [{"system": ACTION, "code": a}]} for a in actions]
    return body


def pharmacy_mandate(*actions: str, **overrides: Any) -> dict[str, Any]:
    return mandate(
        *actions, holder=NURSING_HOME_PHARMACY, system=systems.NIHDI_ORGANIZATION, **overrides
    )


async def end(client: httpx.AsyncClient, record: dict[str, Any]) -> httpx.Response:
    body = {"resourceType": "Consent", "id": record["id"], "status": "inactive"}
    return await client.put(f"{URL}/{record['id']}", json=body, headers=FHIR_JSON)


@pytest.fixture
async def holder(client_for: ClientFactory) -> httpx.AsyncClient:
    return await client_for("patient", ssin=HOLDER)


@pytest.fixture
async def stranger(client_for: ClientFactory) -> httpx.AsyncClient:
    return await client_for("patient", ssin=STRANGER)


@pytest.fixture
async def nursing_home(client_for: ClientFactory) -> httpx.AsyncClient:
    return await client_for("pharmacist", nihdi=NURSING_HOME_PHARMACY)


async def test_RX_16_the_mandator_gives_a_proxy_mandate_in_the_agreed_shape(
    patient: httpx.AsyncClient,
) -> None:
    given = await created(patient, mandate("collect", "view"))
    actor = given["provision"]["actor"][0]
    assert actor["role"]["coding"][0]["code"] == "proxy"
    assert actor["reference"]["identifier"]["value"] == HOLDER
    assert given["scope"]["coding"][0]["code"] == "patient-privacy"
    mine = await patient.get(URL, params={"category": "mandate"})
    assert [e["resource"]["id"] for e in mine.json()["entry"]] == [given["id"]]


async def test_RX_16_a_holder_sees_what_a_view_mandate_allows(
    author: httpx.AsyncClient, patient: httpx.AsyncClient, holder: httpx.AsyncClient
) -> None:
    rx = await prescription(author)
    assert reason_of(await holder.get(f"{RX_URL}/{rx['id']}")) == "not-own-data"
    await created(patient, mandate("view"))
    assert (await holder.get(f"{RX_URL}/{rx['id']}")).status_code == 200
    listed = await holder.get(RX_URL, params={"patient:identifier": SSIN})
    assert [e["resource"]["id"] for e in listed.json()["entry"]] == [rx["id"]]
    consents = await holder.get(URL, params={"patient:identifier": SSIN})
    assert consents.status_code == 200


async def test_RX_16_a_view_holder_may_not_manage(
    patient: httpx.AsyncClient, holder: httpx.AsyncClient
) -> None:
    """Out of scope: changing the mandator's exclusions needs ``manage``."""
    await created(patient, mandate("view", "collect"))
    assert reason_of(await post(holder, exclusion("19234011004"))) == "not-own-data"
    await created(patient, mandate("manage"))
    assert (await post(holder, exclusion("19234011004"))).status_code == 201


async def test_RX_16_a_collect_holder_sees_open_prescriptions_only(
    author: httpx.AsyncClient, patient: httpx.AsyncClient, holder: httpx.AsyncClient
) -> None:
    open_rx = await prescription(author)
    revoked = await prescription(author)
    assert (await revoke(author, revoked["id"])).status_code == 200
    await created(patient, mandate("collect"))
    listed = await holder.get(RX_URL, params={"patient:identifier": SSIN})
    assert [e["resource"]["id"] for e in listed.json()["entry"]] == [open_rx["id"]]
    assert reason_of(await holder.get(f"{RX_URL}/{revoked['id']}")) == "not-own-data"
    # collect is not view: the mandator's consents stay closed to him
    assert reason_of(await holder.get(URL, params={"patient:identifier": SSIN})) == "not-own-data"


async def test_RX_16_an_expired_mandate_permits_nothing(
    author: httpx.AsyncClient, patient: httpx.AsyncClient, holder: httpx.AsyncClient, clock: Clock
) -> None:
    rx = await prescription(author)
    until = (clock() + timedelta(days=2)).isoformat(timespec="seconds")
    await created(patient, mandate("view", provision={"period": {"end": until}}))
    assert (await holder.get(f"{RX_URL}/{rx['id']}")).status_code == 200
    clock.advance(days=3)
    assert reason_of(await holder.get(f"{RX_URL}/{rx['id']}")) == "not-own-data"


async def test_RX_16_an_ended_mandate_permits_nothing_and_the_holder_may_end_it(
    author: httpx.AsyncClient, patient: httpx.AsyncClient, holder: httpx.AsyncClient
) -> None:
    rx = await prescription(author)
    first = await created(patient, mandate("view"))
    assert (await holder.get(f"{URL}/{first['id']}")).status_code == 200  # he reads what he holds
    assert (await end(patient, first)).status_code == 200
    assert reason_of(await holder.get(f"{RX_URL}/{rx['id']}")) == "not-own-data"
    second = await created(patient, mandate("view"))
    ended = await end(holder, second)  # the holder gives it up
    assert ended.status_code == 200
    assert ended.json()["status"] == "inactive"
    assert "end" in ended.json()["provision"]["period"]
    assert reason_of(await holder.get(f"{RX_URL}/{rx['id']}")) == "not-own-data"


async def test_RX_16_only_the_mandator_gives_a_mandate(
    patient: httpx.AsyncClient, holder: httpx.AsyncClient, author: httpx.AsyncClient
) -> None:
    await created(patient, mandate("view", "manage"))
    # a holder, even allowed to manage, gives no mandate for the mandator
    assert reason_of(await post(holder, mandate("view", holder=STRANGER))) == "not-own-data"
    assert reason_of(await post(author, mandate("view"))) == "wrong-role"


async def test_RX_16_another_patients_holder_gets_nothing(
    author: httpx.AsyncClient,
    patient: httpx.AsyncClient,
    holder: httpx.AsyncClient,
    stranger: httpx.AsyncClient,
) -> None:
    rx = await prescription(author)
    given = await created(patient, mandate("view", "collect", "manage"))
    assert reason_of(await stranger.get(f"{RX_URL}/{rx['id']}")) == "not-own-data"
    assert reason_of(await stranger.get(f"{URL}/{given['id']}")) == "not-own-data"
    # A holder of a mandate of the patient gets nothing of another patient.
    theirs = await prescription(author, ssin=STRANGER)
    assert reason_of(await holder.get(f"{RX_URL}/{theirs['id']}")) == "not-own-data"


async def test_RX_16_the_holder_lists_the_mandates_he_holds_and_no_one_elses(
    patient: httpx.AsyncClient, holder: httpx.AsyncClient, stranger: httpx.AsyncClient
) -> None:
    given = await created(patient, mandate("collect"))
    held = await holder.get(
        URL, params={"category": "mandate", "actor:identifier": f"{systems.SSIN}|{HOLDER}"}
    )
    assert [e["resource"]["id"] for e in held.json()["entry"]] == [given["id"]]
    theirs = await stranger.get(
        URL, params={"category": "mandate", "actor:identifier": f"{systems.SSIN}|{HOLDER}"}
    )
    assert reason_of(theirs) == "not-own-data"
    # the mandator's other mandates are his: a holder does not list them by patient
    by_patient = await holder.get(URL, params={"category": "mandate", "patient:identifier": SSIN})
    assert reason_of(by_patient) == "not-own-data"


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (mandate(), "Consent.provision.action"),
        (mandate("sell"), "Consent.provision.action"),
        (pharmacy_mandate("collect", "manage"), "Consent.provision.action"),
        (mandate("view", holder=SSIN), "Consent.provision.actor[0].reference.identifier"),
        (mandate("view", holder="12345"), "Consent.provision.actor[0].reference.identifier"),
    ],
)
async def test_RX_16_a_malformed_mandate_is_422_naming_the_element(
    patient: httpx.AsyncClient, body: dict[str, Any], where: str
) -> None:
    response = await post(patient, body)
    assert response.status_code == 422, response.text
    assert where in [e for i in response.json()["issue"] for e in i.get("expression", [])]


async def test_RX_16_a_nursing_homes_pharmacy_lists_without_eid(
    author: httpx.AsyncClient,
    patient: httpx.AsyncClient,
    nursing_home: httpx.AsyncClient,
) -> None:
    rx = await prescription(author)
    params = {"patient:identifier": SSIN}
    assert reason_of(await nursing_home.get(RX_URL, params=params)) == "no-relationship"
    given = await created(patient, pharmacy_mandate("collect"))
    assert given["provision"]["actor"][0]["role"]["coding"][0]["code"] == "professional"
    listed = await nursing_home.get(RX_URL, params=params)
    assert [e["resource"]["id"] for e in listed.json()["entry"]] == [rx["id"]]
    assert (await nursing_home.get(f"{RX_URL}/{rx['id']}")).status_code == 200
    held = await nursing_home.get(
        URL,
        params={
            "category": "mandate",
            "actor:identifier": f"{systems.NIHDI_ORGANIZATION}|{NURSING_HOME_PHARMACY}",
        },
    )
    assert [e["resource"]["id"] for e in held.json()["entry"]] == [given["id"]]
    # still barred by an exclusion (CO-10)
    await created(patient, exclusion(NURSING_HOME_PHARMACY))
    assert reason_of(await nursing_home.get(RX_URL, params=params)) == "excluded"


def _ssins(event: dict[str, Any]) -> set[str]:
    """Every SSIN an AuditEvent names, in its agents and entities."""
    references = [a.get("who") for a in event["agent"]] + [e["what"] for e in event["entity"]]
    return {
        r["identifier"]["value"]
        for r in references
        if isinstance(r, dict) and r.get("identifier", {}).get("system") == systems.SSIN
    }


async def test_RX_16_an_act_under_a_mandate_is_in_both_logs_with_both_ssins(
    app: FastAPI,
    author: httpx.AsyncClient,
    patient: httpx.AsyncClient,
    holder: httpx.AsyncClient,
) -> None:
    rx = await prescription(author)
    await created(patient, mandate("view"))
    assert (await holder.get(f"{RX_URL}/{rx['id']}")).status_code == 200
    rows = [r for r in await audit_rows(app) if r.reason == "permit-mandate"]
    assert [(r.resource_id, r.patient_hmac) for r in rows] == [
        (rx["id"], patient_hash(app, SSIN)),  # filed under the mandator
        (rx["id"], patient_hash(app, HOLDER)),  # and the holder's copy under him
    ]
    # The mandator's log shows that his holder read it, naming him.
    mine = (await patient.get("/fhir/AuditEvent")).json()
    acts = [
        e["resource"] for e in mine["entry"] if e["resource"]["outcomeDesc"] == "permit-mandate"
    ]
    assert len(acts) == 1
    assert _ssins(acts[0]) == {SSIN, HOLDER}
    assert acts[0]["entity"][0]["what"]["reference"] == f"MedicationRequest/{rx['id']}"
    # The holder's own log shows what he did and for whom; he reads that event by id too.
    his = (await holder.get("/fhir/AuditEvent")).json()
    done = [e["resource"] for e in his["entry"] if e["resource"]["outcomeDesc"] == "permit-mandate"]
    assert len(done) == 1
    assert _ssins(done[0]) == {SSIN, HOLDER}
    assert (await holder.get(f"/fhir/AuditEvent/{done[0]['id']}")).status_code == 200
    assert (await patient.get(f"/fhir/AuditEvent/{acts[0]['id']}")).status_code == 200


async def test_RX_7_RX_16_a_manage_holder_deletes_for_the_mandator_a_view_holder_does_not(
    author: httpx.AsyncClient, patient: httpx.AsyncClient, holder: httpx.AsyncClient
) -> None:
    rx = await prescription(author)
    delete = f"{RX_URL}/{rx['id']}/$delete-by-patient"
    await created(patient, mandate("view"))
    assert reason_of(await holder.post(delete)) == "not-own-data"
    await created(patient, mandate("manage"))
    deleted = await holder.post(delete)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["status"] == "cancelled"
