"""The CapabilityStatement tells the truth (issue 15, item 8): for every interaction, search
parameter and operation ``GET /fhir/metadata`` lists, a request that uses it succeeds; for every
interaction it leaves out, the request is refused (404 or 405); its flags (conditional create,
versioning, updateCreate) match what the server does.

The tests read the statement and look up how to exercise each entry in tables of their own: an
entry the statement gains that these tables do not know fails the test, so the statement cannot
grow a claim nobody checked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from fhir_profiles import systems
from gateway.settings import Settings
from tests.claims.conftest import (
    FUND_URLS,
    Worker,
    funds,
    make_worker,
    post_claim,
    response_for,
    worker,
)
from tests.claims.factories import MARIE, cancel_params, claim
from tests.communications.factories import about, feedback, send, sent, set_feedback
from tests.consents.factories import (
    RX_URL,
    SSIN,
    created,
    exclusion,
    informed_consent,
    prescription,
    relationship,
)
from tests.dispenses.factories import dispense, dispense_rid, operation, parameters
from tests.fhir_profiles.factories import medication_request
from tests.fixtures.auth import OTHER_PRESCRIBER_NIHDI, PHARMACY_NIHDI, PRESCRIBER_NIHDI
from tests.fixtures.fhir import FHIR_JSON, rid_of

__all__ = ["funds", "make_worker", "worker"]  # the claims' fund and worker fixtures, used here

ATTESTATION = "https://www.mycarenet.be/eattest"
PATIENT = f"{systems.SSIN}|{SSIN}"
CONSENT_IDENTIFIER = {"system": "urn:example:his", "value": "consent-1"}
# FHIR R4 valueset-type-restful-interaction: every interaction a type may list.
INTERACTIONS = (
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Claims go to the mock funds (delivered by the test's worker), so a ClaimResponse exists."""
    return settings.model_copy(
        update={"mutuality_urls": dict(FUND_URLS), "worker_in_process": False}
    )


@dataclass
class World:
    """One record of every type, and who wrote it: the author (prescriber and care provider),
    the pharmacy, the patient (who reads all of it) and anyone (the public definitions)."""

    author: httpx.AsyncClient
    pharmacy: httpx.AsyncClient
    patient: httpx.AsyncClient
    anyone: httpx.AsyncClient
    worker: Worker
    ids: dict[str, str]
    rid: str
    attestation: str

    def reader(self, resource_type: str) -> httpx.AsyncClient:
        if resource_type == "Communication":
            return self.author  # feedback goes to the author and is no patient's to read (RX-8)
        return self.anyone if resource_type == "OperationDefinition" else self.patient


@pytest.fixture
async def world(
    author: httpx.AsyncClient,
    pharmacy: httpx.AsyncClient,
    patient: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    worker: Worker,
) -> World:
    rx = await prescription(author)
    dispensed = await dispense_rid(pharmacy, rid_of(rx))
    assert dispensed.status_code == 201, dispensed.text
    message = await sent(pharmacy, feedback(about(rx)))
    reserved = await prescription(author)  # for reserved-at (RX-15)
    reserve = parameters(pharmacy=PHARMACY_NIHDI)
    await operation(patient, f"MedicationRequest/{reserved['id']}/$reserve", reserve)
    consent = await created(patient, informed_consent(identifier=[CONSENT_IDENTIFIER]))
    await created(patient, exclusion(OTHER_PRESCRIBER_NIHDI))
    attestation = await post_claim(author, claim())
    assert attestation.status_code == 202, attestation.text
    claim_id = attestation.json()["id"]
    assert await worker.deliver() == 1
    [answer] = await response_for(author, claim_id)
    [number] = [i["value"] for i in answer["identifier"] if i["system"] == ATTESTATION]
    events = (await patient.get("/fhir/AuditEvent", params={"_count": "1"})).json()
    definitions = (await anonymous.get("/fhir/OperationDefinition")).json()
    return World(
        author,
        pharmacy,
        patient,
        anonymous,
        worker,
        {
            "MedicationRequest": rx["id"],
            "MedicationDispense": dispensed.json()["id"],
            "Consent": consent["id"],
            "Communication": message["id"],
            "Claim": claim_id,
            "ClaimResponse": answer["id"],
            "AuditEvent": events["entry"][0]["resource"]["id"],
            "OperationDefinition": definitions["entry"][0]["resource"]["id"],
        },
        rid_of(rx),
        number,
    )


async def statement_of(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    """The statement's resource entries by type."""
    response = await client.get("/fhir/metadata")
    assert response.status_code == 200, response.text
    return {entry["type"]: entry for entry in response.json()["rest"][0]["resource"]}


def listed(entry: dict[str, Any]) -> set[str]:
    return {interaction["code"] for interaction in entry["interaction"]}


# --- how each listed thing is used ---------------------------------------------------------------

Request = Callable[[World], Awaitable[httpx.Response]]


async def _create(w: World, resource_type: str) -> httpx.Response:
    if resource_type == "MedicationRequest":
        return await w.author.post(RX_URL, json=medication_request(), headers=FHIR_JSON)
    if resource_type == "MedicationDispense":
        rx = await prescription(w.author)
        return await dispense_rid(w.pharmacy, rid_of(rx))
    if resource_type == "Consent":
        body = relationship(PRESCRIBER_NIHDI)
        return await w.patient.post("/fhir/Consent", json=body, headers=FHIR_JSON)
    if resource_type == "Claim":
        return await post_claim(w.author, claim(patient=MARIE, insurer="300"), key="key-2")
    if resource_type == "Communication":
        return await send(w.pharmacy, feedback(about(await prescription(w.author))))
    raise AssertionError(f"no create of {resource_type} in this test")


async def _update(w: World, resource_type: str) -> httpx.Response:
    assert resource_type == "Consent", f"no update of {resource_type} in this test"
    path = f"/fhir/Consent/{w.ids['Consent']}"
    current = (await w.patient.get(path)).json()
    return await w.patient.put(path, json={**current, "status": "inactive"}, headers=FHIR_JSON)


async def use(w: World, resource_type: str, interaction: str) -> httpx.Response:
    """A request that uses ``interaction`` of ``resource_type`` the way a client would."""
    reader, known = w.reader(resource_type), w.ids[resource_type]
    if interaction == "read":
        return await reader.get(f"/fhir/{resource_type}/{known}")
    if interaction == "vread":
        return await reader.get(f"/fhir/{resource_type}/{known}/_history/1")
    if interaction == "history-instance":
        return await reader.get(f"/fhir/{resource_type}/{known}/_history")
    if interaction == "search-type":
        return await reader.get(f"/fhir/{resource_type}")
    if interaction == "create":
        return await _create(w, resource_type)
    if interaction == "update":
        return await _update(w, resource_type)
    raise AssertionError(f"no request for {interaction} in this test")


def search_examples(w: World) -> dict[tuple[str, str], dict[str, str]]:
    """A query using each search parameter, chosen to find the world's record of that type."""
    ids = w.ids
    rx_identifier = f"{systems.RID}|{w.rid}"
    return {
        ("MedicationRequest", "identifier"): {"identifier": rx_identifier},
        ("MedicationRequest", "patient"): {"patient:identifier": PATIENT},
        ("MedicationRequest", "status"): {"patient:identifier": PATIENT, "status": "completed"},
        ("MedicationRequest", "authoredon"): {
            "patient:identifier": PATIENT,
            "authoredon": "ge2020-01-01",
        },
        ("MedicationRequest", "reserved-at"): {"reserved-at": PHARMACY_NIHDI},
        ("MedicationDispense", "prescription"): {
            "prescription": f"MedicationRequest/{ids['MedicationRequest']}"
        },
        ("MedicationDispense", "patient"): {"patient:identifier": PATIENT},
        ("MedicationDispense", "status"): {"patient:identifier": PATIENT, "status": "completed"},
        ("Communication", "about"): {"about": f"MedicationRequest/{ids['MedicationRequest']}"},
        ("Communication", "sent"): {"sent": "ge2020-01-01"},
        ("Consent", "identifier"): {
            "identifier": f"{CONSENT_IDENTIFIER['system']}|{CONSENT_IDENTIFIER['value']}"
        },
        ("Consent", "patient"): {"patient:identifier": PATIENT},
        ("Consent", "actor"): {"actor": OTHER_PRESCRIBER_NIHDI},
        ("Consent", "category"): {"category": "informed-consent"},
        ("Consent", "status"): {"status": "active"},
        ("AuditEvent", "patient"): {"patient": SSIN},
        ("AuditEvent", "date"): {"date": "ge2020-01-01"},
        ("Claim", "patient"): {"patient:identifier": PATIENT},
        ("Claim", "state"): {"state": "delivered"},
        ("ClaimResponse", "request"): {"request": f"Claim/{ids['Claim']}"},
        ("ClaimResponse", "identifier"): {"identifier": f"{ATTESTATION}|{w.attestation}"},
        ("ClaimResponse", "patient"): {"patient:identifier": PATIENT},
        ("ClaimResponse", "state"): {"state": "delivered"},
        ("OperationDefinition", "url"): {
            "url": f"http://gateway.test/fhir/OperationDefinition/{ids['OperationDefinition']}"
        },
    }


def common_example(w: World, resource_type: str, name: str) -> dict[str, str]:
    """The parameters every search accepts (FHIR R4 search.html#all), as a client sends them."""
    values = {
        "_count": "1",
        "_id": w.ids[resource_type],
        "_lastUpdated": "ge2020-01-01",
        "_sort": "-_lastUpdated",
        "_summary": "true",
        "_elements": "id",
        "_total": "accurate",
    }
    assert name in values, f"no example of the common parameter {name} in this test"
    return {name: values[name]}


async def _revoke(w: World) -> httpx.Response:
    rx = await prescription(w.author)
    path = f"MedicationRequest/{rx['id']}/$revoke"
    return await operation(w.author, path, parameters(reason="wrong dose"))


async def _take_in_process(w: World) -> httpx.Response:
    rx = await prescription(w.author)
    path = f"MedicationRequest/{rx['id']}/$take-in-process"
    return await operation(w.pharmacy, path, parameters(rid=rid_of(rx)))


async def _release(w: World) -> httpx.Response:
    rx = await prescription(w.author)
    path = f"MedicationRequest/{rx['id']}"
    await operation(w.pharmacy, f"{path}/$take-in-process", parameters(rid=rid_of(rx)))
    return await operation(w.pharmacy, f"{path}/$release", parameters(rid=rid_of(rx)))


async def _reserve(w: World) -> httpx.Response:
    rx = await prescription(w.author)
    path = f"MedicationRequest/{rx['id']}/$reserve"
    return await operation(w.patient, path, parameters(pharmacy=PHARMACY_NIHDI))


async def _delete_by_patient(w: World) -> httpx.Response:
    rx = await prescription(w.author)
    return await operation(w.patient, f"MedicationRequest/{rx['id']}/$delete-by-patient")


async def _archive(w: World) -> httpx.Response:
    rx = await prescription(w.author)
    await dispense_rid(w.pharmacy, rid_of(rx))
    return await operation(w.pharmacy, f"MedicationRequest/{rx['id']}/$archive")


async def _set_visibility(w: World) -> httpx.Response:
    path = f"MedicationRequest/{w.ids['MedicationRequest']}/$set-visibility"
    return await operation(w.patient, path, parameters(prescribers="closed"))


async def _set_feedback(w: World) -> httpx.Response:
    return await set_feedback(w.author, w.ids["MedicationRequest"], False)


async def _undo(w: World) -> httpx.Response:
    rx = await prescription(w.author)
    dispensed = (await dispense_rid(w.pharmacy, rid_of(rx))).json()
    return await operation(w.pharmacy, f"MedicationDispense/{dispensed['id']}/$undo")


async def _cancel(w: World) -> httpx.Response:
    return await operation(w.author, f"Claim/{w.ids['Claim']}/$cancel", cancel_params("A"))


async def _validate(w: World, resource_type: str) -> httpx.Response:
    bodies: dict[str, tuple[httpx.AsyncClient, dict[str, Any]]] = {
        "MedicationRequest": (w.author, medication_request()),
        "MedicationDispense": (w.pharmacy, dispense(rid=w.rid)),
        "Consent": (w.patient, relationship(PRESCRIBER_NIHDI)),
        "Claim": (w.author, claim()),
    }
    client, body = bodies[resource_type]
    return await operation(client, f"{resource_type}/$validate", body, **{"idempotency-key": "k"})


OPERATIONS: dict[tuple[str, str], tuple[Request, int]] = {
    ("MedicationRequest", "set-visibility"): (_set_visibility, 200),
    ("MedicationRequest", "set-feedback"): (_set_feedback, 200),
    ("MedicationRequest", "revoke"): (_revoke, 200),
    ("MedicationRequest", "take-in-process"): (_take_in_process, 200),
    ("MedicationRequest", "release"): (_release, 200),
    ("MedicationRequest", "reserve"): (_reserve, 200),
    ("MedicationRequest", "archive"): (_archive, 200),
    ("MedicationRequest", "delete-by-patient"): (_delete_by_patient, 200),
    ("MedicationDispense", "undo"): (_undo, 200),
    ("Claim", "cancel"): (_cancel, 202),
    **{
        (resource_type, "validate"): (
            (lambda w, t=resource_type: _validate(w, t)),
            200,
        )
        for resource_type in ("MedicationRequest", "MedicationDispense", "Consent", "Claim")
    },
}


# --- what is listed works ------------------------------------------------------------------------


async def test_every_interaction_listed_is_served(world: World) -> None:
    statement = await statement_of(world.anyone)
    assert set(world.ids) <= set(statement), "a type with records is missing from the statement"
    failures = []
    for resource_type, entry in statement.items():
        for interaction in sorted(listed(entry), key=INTERACTIONS.index):
            response = await use(world, resource_type, interaction)
            if response.status_code not in (200, 201, 202):
                failures.append((resource_type, interaction, response.status_code, response.text))
    assert failures == []


async def test_every_search_parameter_listed_is_accepted(world: World) -> None:
    """Each parameter is accepted (not 400 "unknown parameter") and finds what it names."""
    statement = await statement_of(world.anyone)
    examples = search_examples(world)
    failures = []
    for resource_type, entry in statement.items():
        for param in entry.get("searchParam", []):
            name = param["name"]
            if name.startswith("_"):
                query = common_example(world, resource_type, name)
            else:
                assert (resource_type, name) in examples, f"no example of {resource_type}?{name}"
                query = examples[(resource_type, name)]
            response = await world.reader(resource_type).get(f"/fhir/{resource_type}", params=query)
            found = response.json() if response.status_code == 200 else {}
            if found.get("type") != "searchset" or not found.get("total"):
                failures.append((resource_type, query, response.status_code, response.text))
    assert failures == []


async def test_every_operation_listed_runs(world: World) -> None:
    statement = await statement_of(world.anyone)
    failures = []
    offered = [(t, op["name"]) for t, e in statement.items() for op in e.get("operation", [])]
    for key in offered:
        assert key in OPERATIONS, f"no request for ${key[1]} on {key[0]} in this test"
        call, expected = OPERATIONS[key]
        response = await call(world)
        if response.status_code != expected:
            failures.append((key, response.status_code, response.text))
    assert failures == []
    # The test's table holds nothing the statement does not offer: both lists are the same.
    assert sorted(offered) == sorted(OPERATIONS)


async def test_validate_answers_an_outcome_for_each_type(world: World) -> None:
    for resource_type in ("MedicationRequest", "MedicationDispense", "Consent", "Claim"):
        answer = (await _validate(world, resource_type)).json()
        assert answer["resourceType"] == "OperationOutcome"
        assert [i["severity"] for i in answer["issue"]] == ["information"], resource_type


# --- what is left out is refused -----------------------------------------------------------------


async def refuse(w: World, resource_type: str, interaction: str) -> httpx.Response:
    """A request for ``interaction``, by a caller who would be allowed if it were served."""
    client, known = w.reader(resource_type), w.ids[resource_type]
    body = {"resourceType": resource_type, "id": known}
    instance = f"/fhir/{resource_type}/{known}"
    if interaction == "update":
        return await client.put(instance, json=body, headers=FHIR_JSON)
    if interaction == "patch":
        return await client.patch(instance, json=body, headers=FHIR_JSON)
    if interaction == "delete":
        return await client.delete(instance)
    if interaction == "history-type":
        return await client.get(f"/fhir/{resource_type}/_history")
    if interaction == "create":
        return await client.post(f"/fhir/{resource_type}", json=body, headers=FHIR_JSON)
    return await use(w, resource_type, interaction)


async def test_interactions_left_out_are_refused(world: World) -> None:
    statement = await statement_of(world.anyone)
    answered = []
    for resource_type, entry in statement.items():
        for interaction in sorted(set(INTERACTIONS) - listed(entry), key=INTERACTIONS.index):
            response = await refuse(world, resource_type, interaction)
            if response.status_code not in (404, 405):
                answered.append((resource_type, interaction, response.status_code))
            else:
                assert response.json()["resourceType"] == "OperationOutcome"
    assert answered == []


async def test_types_and_operations_left_out_are_refused(world: World) -> None:
    statement = await statement_of(world.anyone)
    assert "Patient" not in statement
    assert (await world.patient.get(f"/fhir/Patient/{world.ids['Consent']}")).status_code == 404
    # AuditEvent offers no $validate; a MedicationRequest no $everything.
    assert "operation" not in statement["AuditEvent"]
    audit = await operation(world.patient, "AuditEvent/$validate", {"resourceType": "AuditEvent"})
    assert audit.status_code in (404, 405)
    everything = f"MedicationRequest/{world.ids['MedicationRequest']}/$everything"
    assert (await operation(world.author, everything)).status_code == 404


async def test_search_parameters_left_out_are_refused(world: World) -> None:
    """A standard parameter a type does not list is 400 naming it, not silently ignored."""
    statement = await statement_of(world.anyone)
    for resource_type, entry in statement.items():
        if "search-type" not in listed(entry):
            continue
        names = {param["name"] for param in entry.get("searchParam", [])}
        unlisted = next(
            n for n in ("_text", "_content", "_has", "subject", "code") if n not in names
        )
        response = await world.reader(resource_type).get(
            f"/fhir/{resource_type}", params={unlisted: "x"}
        )
        assert response.status_code == 400, (resource_type, unlisted, response.text)
        assert response.json()["issue"][0]["expression"] == [unlisted]


# --- the flags match behaviour -------------------------------------------------------------------


async def test_conditional_create_where_listed(world: World) -> None:
    statement = await statement_of(world.anyone)
    conditional = {t for t, e in statement.items() if e.get("conditionalCreate")}
    assert conditional == {"MedicationRequest", "Consent"}
    assert {t for t, e in statement.items() if e.get("conditionalUpdate")} == {"Consent"}
    readable = {t for t, e in statement.items() if "conditionalRead" in e}
    assert readable == set(statement) - {"OperationDefinition"}
    for resource_type, entry in statement.items():
        if "conditionalRead" in entry:
            assert entry["conditionalRead"] == "full-support", resource_type
            read = await use(world, resource_type, "read")
            again = await world.reader(resource_type).get(
                str(read.url), headers={"If-None-Match": read.headers["etag"]}
            )
            assert again.status_code == 304, resource_type
    body = medication_request(identifier=[{"system": "urn:example:his", "value": "rx-9"}])
    condition = {"if-none-exist": "identifier=urn:example:his|rx-9", **FHIR_JSON}
    first = await world.author.post(RX_URL, json=body, headers=condition)
    again = await world.author.post(RX_URL, json=body, headers=condition)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]


async def test_versioning_matches_what_reads_carry(world: World) -> None:
    statement = await statement_of(world.anyone)
    for resource_type, entry in statement.items():
        if resource_type == "OperationDefinition":
            continue
        read = (await use(world, resource_type, "read")).json()
        versioned = entry["versioning"] != "no-version"
        assert ("versionId" in read.get("meta", {})) is versioned, resource_type
        assert entry["readHistory"] is versioned, resource_type
    assert statement["AuditEvent"]["versioning"] == "no-version"
    search = await world.patient.get("/fhir/AuditEvent")
    assert all("versionId" not in e["resource"]["meta"] for e in search.json()["entry"])


async def test_version_aware_update_and_no_update_create(world: World) -> None:
    statement = await statement_of(world.anyone)
    updatable = {t: e for t, e in statement.items() if "update" in listed(e)}
    assert set(updatable) == {"Consent"}
    assert updatable["Consent"]["versioning"] == "versioned-update"
    assert updatable["Consent"]["updateCreate"] is False
    path = f"/fhir/Consent/{world.ids['Consent']}"
    current = (await world.patient.get(path)).json()
    stale = await world.patient.put(
        path,
        json={**current, "status": "inactive"},
        headers={"if-match": 'W/"7"', **FHIR_JSON},
    )
    assert stale.status_code == 412
    unknown = await world.patient.put(
        "/fhir/Consent/no-such-consent",
        json={**current, "id": "no-such-consent", "status": "inactive"},
        headers=FHIR_JSON,
    )
    assert unknown.status_code == 404
