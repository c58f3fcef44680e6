"""The funds speak eAttest messages (hl7-be/eattestation): ``POST {fund}/$process-message``.

The request examples follow the guide's general-practice ones (ex11, ex13), written here in the
project's own words: a GP's PractitionerRole pointing at his Practitioner, the collector on the role,
the patient by the fund's membership number with the fund as assigner, a supplement, a care team.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from fhir.resources.R4B.bundle import Bundle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mutualities import systems
from tests.fixtures.clock import Clock
from tests.mutualities import factories
from tests.mutualities.factories import GP, JAN, TODAY, answer_of, feed_answers

JAN_MEMBERSHIP = "1000000001328"  # mutualities/data/members.json: Jan's number at fund 100
CBE = "https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/cbe"
HEADER = "urn:uuid:5b0e0c51-2f7a-4c8e-9d1a-6a0f3e2b7c11"
ROLE = "urn:uuid:0d7f3c2a-8b4e-4f61-a2d9-3c5e7f9a1b20"
DOCTOR = "urn:uuid:9c1e5a7b-3d2f-4e8a-b6c4-2f1d0e9a8b33"
PATIENT = "urn:uuid:7a2b4c6d-8e0f-4a1b-9c3d-5e7f9a1b3c44"
CLAIM = "urn:uuid:3e5f7a9b-1c3d-4e5f-8a7b-9c1d3e5f7a55"


def service(code: str = "101032", fee: float = 30.03, count: int = 1) -> dict[str, Any]:
    return {
        "extension": [
            {
                "url": "https://www.ehealth.fgov.be/standards/fhir/eattestation/StructureDefinition/be-ext-eattestation-item-supplement",
                "valueMoney": {"value": 1.00, "currency": "EUR"},
            }
        ],
        "careTeamSequence": [1],
        "productOrService": {"coding": [{"system": systems.NIHDI_NOMENCLATURE, "code": code}]},
        "servicedDate": TODAY,
        "quantity": {"value": count},
        "unitPrice": {"value": fee, "currency": "EUR"},
        "net": {"value": round(fee * count, 2), "currency": "EUR"},
    }


def request(
    bundle_id: str = "gp-visit-0001",
    *,
    event: str = "eattest-create",
    patient: dict[str, Any] | None = None,
    items: list[dict[str, Any]] | None = None,
    role: dict[str, Any] | None = None,
    claim_extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A GP's create (or cancel) message; the patient by membership number unless told."""
    patient = patient or {
        "system": systems.MEMBERSHIP,
        "value": JAN_MEMBERSHIP,
        "assigner": {"identifier": {"system": systems.INSURER, "value": "100"}},
    }
    # The factories' Claim, its parties as references to the message's entries (as the guide's).
    claim = factories.claim(items=items if items is not None else [service()])
    del claim["insurer"]  # the guide's Claim names none: the membership's assigner says which fund
    claim.update(
        patient={"reference": PATIENT},
        provider={"reference": ROLE},
        enterer={"reference": ROLE},
        priority={"coding": [{"code": "stat"}]},
        subType={
            "coding": [
                {
                    "system": "https://www.ehealth.fgov.be/standards/fhir/eattestation/CodeSystem/be-cs-eattestation-types",
                    "code": "generalpractice",
                }
            ]
        },
        careTeam=[
            {
                "sequence": 1,
                "provider": {"identifier": {"system": systems.NIHDI, "value": GP}},
                "role": {"coding": [{"code": "primary"}]},
                "qualification": {"coding": [{"system": systems.HCPARTY, "code": "persphysician"}]},
            }
        ],
        insurance=[{"sequence": 1, "focal": True, "coverage": {"display": "mandatory"}}],
        **(claim_extra or {}),
    )
    return {
        "resourceType": "Bundle",
        "id": bundle_id,
        "type": "message",
        "timestamp": "2025-03-14T10:15:05+01:00",
        "entry": [
            {
                "fullUrl": HEADER,
                "resource": {
                    "resourceType": "MessageHeader",
                    "id": HEADER.removeprefix("urn:uuid:"),
                    "eventCoding": {"system": systems.MESSAGE_EVENTS, "code": event},
                    "destination": [{"name": "MyCareNet", "endpoint": "urn:mycarenet"}],
                    "sender": {"reference": ROLE},
                    "source": {
                        "endpoint": f"urn:be:fgov:person:ssin:ehealth:1.0:doctor:nihii11:{GP}"
                    },
                    "focus": [{"reference": CLAIM}],
                },
            },
            {
                "fullUrl": ROLE,
                "resource": role
                or {
                    "resourceType": "PractitionerRole",
                    "practitioner": {"reference": DOCTOR},
                    "organization": {"identifier": {"system": CBE, "value": "0635769870"}},
                    "code": [{"coding": [{"system": systems.HCPARTY, "code": "persphysician"}]}],
                },
            },
            {
                "fullUrl": DOCTOR,
                "resource": {
                    "resourceType": "Practitioner",
                    "identifier": [{"system": systems.NIHDI, "value": GP}],
                    "name": [{"family": "Claes", "given": ["An"]}],
                },
            },
            {
                "fullUrl": PATIENT,
                "resource": {"resourceType": "Patient", "identifier": [patient]},
            },
            {"fullUrl": CLAIM, "resource": claim},
        ],
    }


def cancel_request(number: str, reason: str = "B") -> dict[str, Any]:
    body = request("gp-cancel-0001", event="eattest-cancel")
    claim = body["entry"][-1]["resource"]
    claim["identifier"] = [{"system": systems.ATTESTATION, "value": number}]
    claim["supportingInfo"] = [
        {
            "sequence": 1,
            "category": {"coding": [{"code": "info"}]},
            "code": {"coding": [{"system": systems.CANCEL_REASON, "code": reason}]},
        }
    ]
    return body


async def post(
    client: httpx.AsyncClient, body: object, fund: str = "100", **headers: str
) -> httpx.Response:
    return await client.post(
        f"/funds/{fund}/$process-message", content=orjson.dumps(body), headers=headers
    )


def resources(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["fullUrl"]: entry["resource"] for entry in message["entry"]}


def entry_of(message: dict[str, Any], resource_type: str) -> dict[str, Any]:
    [found] = [r for r in resources(message).values() if r["resourceType"] == resource_type]
    return found


async def test_a_create_message_is_acknowledged_with_the_guides_response(
    client: httpx.AsyncClient,
) -> None:
    response = await post(client, request(items=[service(), service("103132", 45.35, 2)]))
    assert response.status_code == 200
    message = orjson.loads(response.content)
    Bundle.model_validate(message)  # valid FHIR R4(B)
    assert message["type"] == "message"
    header = message["entry"][0]["resource"]
    assert header["eventCoding"] == {
        "system": systems.MESSAGE_EVENTS,
        "code": "eattestresponse-create",
    }
    assert header["response"] == {"identifier": HEADER.removeprefix("urn:uuid:"), "code": "ok"}
    answer = answer_of(message)
    assert header["focus"] == [
        {
            "reference": next(
                e["fullUrl"]
                for e in message["entry"]
                if e["resource"] is not None and e["resource"]["resourceType"] == "ClaimResponse"
            )
        }
    ]
    # Named by his membership number, the patient is answered by SSIN (the provider learns whom).
    by_url = resources(message)
    assert by_url[answer["patient"]["reference"]]["identifier"] == [
        {"system": systems.SSIN, "value": JAN}
    ]
    assert answer["patient"]["identifier"] == {"system": systems.SSIN, "value": JAN}
    insurer = by_url[answer["insurer"]["reference"]]
    assert insurer["identifier"] == [{"system": systems.INSURER, "value": "100"}]
    role = by_url[answer["requestor"]["reference"]]
    assert role["resourceType"] == "PractitionerRole"
    assert by_url[role["practitioner"]["reference"]]["identifier"][0]["value"] == GP
    assert answer["outcome"] == "complete"
    assert answer["identifier"][0]["system"] == systems.ATTESTATION
    first, second = answer["addItem"]
    assert (first["itemSequence"], second["itemSequence"]) == ([1], [2])
    assert second["provider"] == [answer["requestor"]]
    assert second["productOrService"]["coding"] == [
        {"system": systems.NIHDI_NOMENCLATURE, "code": "103132"}
    ]
    assert (second["servicedDate"], second["quantity"]["value"]) == (TODAY, 2)
    assert (second["unitPrice"]["value"], second["net"]["value"]) == (45.35, 90.70)
    assert second["adjudication"][0]["category"]["coding"][0]["code"] == "intreatment"


async def test_a_replay_answers_the_same_bytes_and_attests_once(
    client: httpx.AsyncClient,
) -> None:
    first = await post(client, request(), **{"Idempotency-Key": "gp-visit-0001"})
    again = await post(client, request())
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    report = (await client.get("/funds/100/admin/received")).json()
    assert (report["counts"]["accepted"], report["counts"]["deliveries"]) == (1, 2)
    changed = request(items=[service("101076", 32.97)])
    reused = await post(client, changed)
    assert reused.status_code == 409


async def test_a_refusal_carries_an_operation_outcome_with_paths_into_the_message(
    client: httpx.AsyncClient,
) -> None:
    unknown = {
        "system": systems.MEMBERSHIP,
        "value": "1000000009999",
        "assigner": {"identifier": {"system": systems.INSURER, "value": "100"}},
    }
    body = request("gp-visit-0002", patient=unknown, items=[service(), service("999999", 10.0)])
    message = orjson.loads((await post(client, body)).content)
    header = message["entry"][0]["resource"]
    assert header["eventCoding"]["code"] == "reject"
    outcome = entry_of(message, "OperationOutcome")
    assert header["focus"] == [
        {
            "reference": next(
                e["fullUrl"]
                for e in message["entry"]
                if e["resource"] is outcome or e["resource"] == outcome
            )
        }
    ]
    found = {
        (issue["details"]["coding"][0]["code"], issue["code"], issue["expression"][0])
        for issue in outcome["issue"]
    }
    assert found == {
        (
            "NOT_A_MEMBER",
            "not-found",
            "Bundle.entry[4].resource.ofType(Claim).patient.identifier.value",
        ),
        (
            "UNKNOWN_NOMENCLATURE_CODE",
            "code-invalid",
            "Bundle.entry[4].resource.ofType(Claim).item[1].productOrService.coding[0].code",
        ),
    }
    # The ClaimResponse says the same, its paths in the Claim (what the gateway shows the provider).
    answer = answer_of(message)
    assert answer["outcome"] == "error"
    assert {e["code"]["text"] for e in answer["error"]} == {
        "Claim.patient.identifier.value",
        "Claim.item[1].productOrService.coding[0].code",
    }
    # Not a member: the fund names the patient only as the claim did.
    assert answer["patient"]["identifier"]["system"] == systems.MEMBERSHIP


async def test_a_role_without_its_practitioner_is_refused_with_the_guides_code(
    client: httpx.AsyncClient,
) -> None:
    role = {"resourceType": "PractitionerRole", "code": [{"coding": [{"code": "persphysician"}]}]}
    message = orjson.loads((await post(client, request("gp-visit-0003", role=role))).content)
    guide, unreadable = entry_of(message, "OperationOutcome")["issue"]
    assert guide["details"]["coding"][1] == {
        "system": systems.EATTEST_ERRORS,
        "code": "MISSING_PRACTITIONERROLE_PRACTITIONER_REFERENCE",
    }
    assert guide["expression"] == ["Bundle.entry[1].resource.ofType(PractitionerRole).practitioner"]
    # and so the claim names no provider the fund can read
    assert unreadable["details"]["coding"][0]["code"] == "INVALID_CLAIM"
    assert unreadable["expression"][1] == "Claim.provider.identifier"


async def test_what_is_not_an_eattest_message_is_a_400(client: httpx.AsyncClient) -> None:
    no_id = request()
    del no_id["id"]
    refused = await post(client, no_id)
    assert refused.status_code == 400
    assert {"system": systems.EATTEST_ERRORS, "code": "MISSING_BUNDLE_ID"} in refused.json()[
        "issue"
    ][0]["details"]["coding"]
    other_event = request()
    other_event["entry"][0]["resource"]["eventCoding"]["code"] = "eagreement-ask"
    for body in (other_event, {"resourceType": "Claim"}, [1, 2], "x"):
        assert (await post(client, body)).status_code == 400
    mismatch = await post(client, request(), **{"Idempotency-Key": "another-key"})
    assert mismatch.status_code == 400
    assert (await client.get("/funds/100/admin/received")).json()["counts"]["claims"] == 0


async def test_a_cancel_message_and_the_feed_speak_messages_too(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    created = answer_of(
        orjson.loads(
            (await post(client, request(patient={"system": systems.SSIN, "value": JAN}))).content
        )
    )
    number = created["identifier"][0]["value"]
    response = await post(client, cancel_request(number))
    message = orjson.loads(response.content)
    assert message["entry"][0]["resource"]["eventCoding"]["code"] == "eattestresponse-cancel"
    confirmation = answer_of(message)
    assert (confirmation["status"], confirmation["outcome"]) == ("cancelled", "complete")
    assert confirmation["identifier"] == created["identifier"]
    assert (await post(client, cancel_request(number, "C"))).content == response.content
    clock.advance(minutes=5)
    page = await client.get("/funds/100/settlements")
    [event] = page.json()["entry"]
    assert event["resource"]["type"] == "message"
    assert event["resource"]["id"] == f"{number}-cancelled"
    assert feed_answers(page.json())[0]["id"] == f"{number}-cancelled"
    assert (await client.get("/funds/100/settlements")).content == page.content


async def test_a_settlement_event_is_a_message_naming_the_patient_by_ssin(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    await post(client, request())
    clock.advance(minutes=2)
    [event] = (await client.get("/funds/100/settlements")).json()["entry"]
    message = event["resource"]
    Bundle.model_validate(message)
    header = message["entry"][0]["resource"]
    assert header["eventCoding"] == {"system": systems.MUTUALITY_EVENT, "code": "settled"}
    assert "response" not in header  # nobody asked: the fund tells
    settled = answer_of(message)
    assert resources(message)[settled["patient"]["reference"]]["identifier"][0]["value"] == JAN
    [line] = settled["addItem"]
    codes = [a["category"]["coding"][0]["code"] for a in line["adjudication"]]
    assert codes[:3] == ["intreatment", "benefit", "copay"]


_INT = st.integers(min_value=-(2**63), max_value=2**64 - 1)  # what JSON numbers carry here
_JUNK: st.SearchStrategy[object] = st.one_of(
    st.none(), _INT, st.text(max_size=5), st.lists(_INT, max_size=2), st.just({})
)


# Where a sender's software could go wrong: (entry, path in it), each set to some junk.
_PLACES = [
    (0, ("resource",)),
    (0, ("fullUrl",)),
    (0, ("resource", "eventCoding")),
    (0, ("resource", "id")),
    (1, ("resource", "practitioner")),
    (1, ("resource", "practitioner", "reference")),
    (1, ("fullUrl",)),
    (2, ("resource", "identifier")),
    (3, ("resource", "identifier")),
    (3, ("resource", "identifier", 0, "assigner")),
    (3, ("resource", "identifier", 0, "value")),
    (4, ("resource", "patient")),
    (4, ("resource", "patient", "reference")),
    (4, ("resource", "provider", "reference")),
    (4, ("resource", "insurer")),
    (4, ("resource", "item")),
    (4, ("resource", "item", 0, "quantity")),
    (4, ("resource", "item", 0, "productOrService")),
]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(place=st.sampled_from(_PLACES), junk=_JUNK)
async def test_a_mangled_message_never_breaks_the_fund(
    client: httpx.AsyncClient, place: tuple[int, tuple[str | int, ...]], junk: object
) -> None:
    entry, path = place
    body = request(f"fuzz-{entry}-{'-'.join(map(str, path))}")
    target: Any = body["entry"][entry]
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = junk
    response = await post(client, body)
    assert response.status_code in (200, 400, 409), response.text
    if response.status_code == 200:
        assert answer_of(response.json())["resourceType"] == "ClaimResponse"
