"""POST /fhir/$process-message end to end: the guide's request message in, its answer out.

The real mock funds answer over HTTP (in process); a forwarder runs beside the request, as the
in-process worker or ``gateway worker`` would. Domain AT-4 (the answer), AT-5 (refusals with the
guide's codes), AT-6 (cancel), AT-7 (the Bundle id as request key, byte-for-byte replay).
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from gateway.settings import Settings
from gateway.storage.tables import audit_events
from tests.claims.conftest import Worker, claim_row, job_rows, state_of
from tests.claims.factories import GP, claim, item
from tests.claims.message_factories import (
    cancel_message,
    create_message,
    member,
    prescription,
    uid,
    with_supplements,
)

ERRORS = (
    "https://www.ehealth.fgov.be/standards/fhir/eattestation/CodeSystem/be-cs-eattestation-errors"
)
CONTENT = {"content-type": "application/fhir+json"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"message_wait_seconds": 5.0})


async def send(client: httpx.AsyncClient, message: dict[str, Any]) -> httpx.Response:
    return await client.post("/fhir/$process-message", json=message, headers=CONTENT)


async def send_while_delivering(
    client: httpx.AsyncClient, worker: Worker, message: dict[str, Any]
) -> httpx.Response:
    """The request waits for the fund; a forwarder delivers meanwhile."""
    request = asyncio.ensure_future(send(client, message))
    while not request.done():
        await worker.deliver()
        await asyncio.sleep(0.05)
    return await request


async def audit_count(app: FastAPI) -> int:
    async with app.state.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(audit_events)) or 0)


def resources(answer: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [
        e["resource"] for e in answer["entry"] if e["resource"]["resourceType"] == resource_type
    ]


def gp_message(**kwargs: Any) -> dict[str, Any]:
    return create_message(with_supplements(claim(), 1.5), **kwargs)


async def test_a_create_message_is_answered_with_the_funds_claim_response(
    provider: httpx.AsyncClient, worker: Worker, app: FastAPI
) -> None:
    message = gp_message()
    response = await send_while_delivering(provider, worker, message)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["type"], answer["meta"]["profile"][0].endswith("be-eattestation-response")) == (
        "message",
        True,
    )
    header = answer["entry"][0]["resource"]
    assert header["eventCoding"]["code"] == "eattestresponse-create"
    assert header["response"] == {
        "identifier": message["entry"][0]["resource"]["id"],
        "code": "ok",
    }
    [claim_response] = resources(answer, "ClaimResponse")
    assert header["focus"][0]["reference"].endswith(claim_response["id"][-12:])
    number = next(
        i["value"]
        for i in claim_response["identifier"]
        if i["system"] == "https://www.mycarenet.be/eattest"
    )
    assert number
    # The provider's role and person and the fund come back as the guide's answer has them.
    assert resources(answer, "PractitionerRole")
    assert resources(answer, "Practitioner")
    [fund] = resources(answer, "Organization")
    assert fund["identifier"][0]["value"] == "100"
    # The REST reads show the same ClaimResponse, and the stored Claim is the same shape as
    # POST /fhir/Claim stores: provider by NIHDI, the message's entries contained.
    claim_id = claim_response["request"]["reference"].split("/")[1]
    read = await provider.get(f"/fhir/ClaimResponse/{claim_response['id']}")
    assert read.json() == claim_response
    stored = (await provider.get(f"/fhir/Claim/{claim_id}")).json()
    assert stored["provider"]["identifier"]["value"] == GP
    assert {r["resourceType"] for r in stored["contained"]} == {
        "Patient",
        "PractitionerRole",
        "Practitioner",
    }
    assert state_of(stored) == "delivered"
    assert {"system": f"urn:ehealth-gateway:request-key:{GP}", "value": message["id"]} in stored[
        "identifier"
    ]


async def test_a_replay_is_answered_byte_for_byte_and_sends_nothing_again(
    provider: httpx.AsyncClient, worker: Worker, app: FastAPI
) -> None:
    message = gp_message()
    first = await send_while_delivering(provider, worker, message)
    assert first.status_code == 200, first.text
    retried = copy.deepcopy(message)
    retried["timestamp"] = "2030-01-01T00:00:00+01:00"  # software that restamps its retry
    logged = await audit_count(app)
    again = await send(provider, retried)
    assert again.status_code == 200
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert len(await job_rows(app)) == 1
    assert await audit_count(app) > logged  # the replay's read of the ClaimResponse is audited


async def test_the_same_bundle_id_with_other_content_is_refused(
    provider: httpx.AsyncClient, worker: Worker
) -> None:
    message = gp_message()
    assert (await send_while_delivering(provider, worker, message)).status_code == 200
    other = gp_message(bundle_id=message["id"])
    other["entry"][-1]["resource"]["item"][0]["quantity"]["value"] = 2
    other["entry"][-1]["resource"]["item"][0]["net"]["value"] = 60.06
    other["entry"][-1]["resource"]["total"]["value"] = 60.06
    response = await send(provider, other)
    assert response.status_code == 409
    [outcome] = resources(response.json(), "OperationOutcome")
    assert outcome["issue"][0]["expression"] == ["Bundle.id"]
    assert response.json()["entry"][0]["resource"]["response"]["code"] == "fatal-error"


async def test_no_answer_in_time_is_a_transient_error_and_the_resend_gets_the_answer(
    provider: httpx.AsyncClient, worker: Worker, app: FastAPI, settings: Settings
) -> None:
    app.state.settings = settings.model_copy(update={"message_wait_seconds": 0.0})
    message = gp_message()
    early = await send(provider, message)
    assert early.status_code == 503
    assert early.headers["retry-after"]
    header = early.json()["entry"][0]["resource"]
    assert header["response"]["code"] == "transient-error"
    await worker.deliver()
    later = await send(provider, message)
    assert later.status_code == 200, later.text
    assert later.json()["entry"][0]["resource"]["response"]["code"] == "ok"
    assert len(await job_rows(app)) == 1  # the resend waited for the same claim


async def test_a_cancel_message_cancels_the_attestation(
    provider: httpx.AsyncClient, worker: Worker, app: FastAPI
) -> None:
    created = (await send_while_delivering(provider, worker, gp_message())).json()
    [claim_response] = resources(created, "ClaimResponse")
    number = next(i["value"] for i in claim_response["identifier"] if "mycarenet" in i["system"])
    response = await send_while_delivering(provider, worker, cancel_message(number, GP, "B"))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["entry"][0]["resource"]["eventCoding"]["code"] == "eattestresponse-cancel"
    claim_id = claim_response["request"]["reference"].split("/")[1]
    assert (await claim_row(app, claim_id)).state == "cancelled"
    [job] = [j for j in await job_rows(app, claim_id) if j.kind == "cancel"]
    assert job.cancel_reason == "B"


async def test_a_cancel_of_an_unknown_or_someone_elses_number_is_not_found(
    provider: httpx.AsyncClient,
) -> None:
    response = await send(provider, cancel_message("100-1-250101-0000001-00", GP))
    assert response.status_code == 404
    assert response.json()["entry"][0]["resource"]["response"]["code"] == "fatal-error"


async def test_a_cancel_with_items_breaks_the_create_cancel_invariant(
    provider: httpx.AsyncClient,
) -> None:
    message = cancel_message("100-1-250101-0000001-00", GP, "Z")
    message["entry"][-1]["resource"]["item"] = claim()["item"]
    response = await send(provider, message)
    assert response.status_code == 422
    [outcome] = resources(response.json(), "OperationOutcome")
    rules = {c["code"] for i in outcome["issue"] for c in i["details"]["coding"]}
    assert {"be-inv-eattestation-create-cancel", "AT-6"} <= rules


async def test_a_patient_named_by_membership_number(
    provider: httpx.AsyncClient, app: FastAPI, settings: Settings
) -> None:
    app.state.settings = settings.model_copy(update={"message_wait_seconds": 0.0})
    message = gp_message(membership=("300", "3001234567"))
    response = await send(provider, message)
    assert response.status_code == 503, response.text
    [job] = await job_rows(app)
    assert job.fund_code == "300"  # the fund that assigned the number
    stored = (await provider.get(f"/fhir/Claim/{job.claim_id}")).json()
    patient = stored["patient"]["identifier"]
    assert patient["value"] == "3001234567"
    assert patient["assigner"]["identifier"]["value"] == "300"
    assert stored["insurer"]["identifier"]["value"] == "300"


async def test_a_missing_bundle_id_carries_the_guides_error_code(
    provider: httpx.AsyncClient,
) -> None:
    message = gp_message()
    del message["id"]
    response = await send(provider, message)
    assert response.status_code == 422
    [outcome] = resources(response.json(), "OperationOutcome")
    [issue] = outcome["issue"]
    assert issue["details"]["coding"][0] == {"system": ERRORS, "code": "MISSING_BUNDLE_ID"}
    assert issue["expression"] == ["Bundle.id"]


async def test_a_role_without_its_practitioner_carries_the_guides_error_code(
    provider: httpx.AsyncClient,
) -> None:
    message = gp_message()
    del message["entry"][1]["resource"]["practitioner"]
    response = await send(provider, message)
    assert response.status_code == 422
    [outcome] = resources(response.json(), "OperationOutcome")
    coded = [i for i in outcome["issue"] if i["details"]["coding"][0]["system"] == ERRORS]
    assert (
        coded[0]["details"]["coding"][0]["code"]
        == "MISSING_PRACTITIONERROLE_PRACTITIONER_REFERENCE"
    )
    assert coded[0]["expression"] == [
        "Bundle.entry[1].resource.ofType(PractitionerRole).practitioner"
    ]


async def test_violations_point_into_the_message(provider: httpx.AsyncClient) -> None:
    message = gp_message()
    patient = message["entry"][3]["resource"]
    patient["identifier"][0]["value"] = "85073003329"
    message["entry"][-1]["resource"]["item"][0]["net"]["value"] = 1.0
    message["entry"][1]["resource"]["organization"]["identifier"]["value"] = "12"
    response = await send(provider, message)
    assert response.status_code == 422
    [outcome] = resources(response.json(), "OperationOutcome")
    where = {i["expression"][0] for i in outcome["issue"]}
    assert "Bundle.entry[1].resource.ofType(PractitionerRole).organization.identifier" in where
    # the collector is checked before the claim's rules run, so fix it and look again
    message["entry"][1]["resource"]["organization"]["identifier"]["value"] = "0456.123.789"
    response = await send(provider, message)
    [outcome] = resources(response.json(), "OperationOutcome")
    where = {i["expression"][0] for i in outcome["issue"]}
    assert "Bundle.entry[3].resource.ofType(Patient).identifier[0].value" in where
    assert "Bundle.entry[4].resource.ofType(Claim).item[0].net.value" in where


async def test_a_supplement_is_required_in_a_gps_message_only(provider: httpx.AsyncClient) -> None:
    response = await send(provider, create_message(claim()))
    assert response.status_code == 422
    [outcome] = resources(response.json(), "OperationOutcome")
    assert {i["details"]["coding"][0]["code"] for i in outcome["issue"]} == {"be-inv-supplement"}


async def test_physiotherapy_on_prescription_with_a_location(
    provider: httpx.AsyncClient, app: FastAPI, settings: Settings
) -> None:
    app.state.settings = settings.model_copy(update={"message_wait_seconds": 0.0})
    body = claim(attestation_type="physiotherapy")
    body["item"][0]["extension"] = [
        {
            "url": "https://www.ehealth.fgov.be/standards/fhir/eattestation/StructureDefinition/be-ext-eattestation-item-preauthref",
            "valueString": "DEC-7",
        }
    ]
    role_id, person_id, location_id = uid(), uid(), uid()
    extra = prescription(role_id, person_id)
    location = {
        "resourceType": "Location",
        "id": location_id,
        "type": [
            {
                "coding": [
                    {
                        "system": "https://www.ehealth.fgov.be/standards/fhir/nihdi-terminology/CodeSystem/be-cs-hospital-service-cd",
                        "code": "130",
                    }
                ]
            }
        ],
    }
    body["supportingInfo"] = [
        {
            "sequence": 1,
            "category": {"text": "info"},
            "valueReference": {"reference": f"urn:uuid:{extra[0]['id']}"},
        }
    ]
    body["item"][0]["locationReference"] = {"reference": f"urn:uuid:{location_id}"}
    team = [member(GP, "primary", "persphysiotherapist")]
    response = await send(provider, create_message(body, extra=[*extra, location], care_team=team))
    assert response.status_code == 503, response.text
    # Without the prescriber's standard and with a place the guide does not allow: refused.
    del extra[0]["extension"]
    del location["type"]
    response = await send(provider, create_message(body, extra=[*extra, location], care_team=team))
    assert response.status_code == 422
    [outcome] = resources(response.json(), "OperationOutcome")
    rules = {i["details"]["coding"][0]["code"] for i in outcome["issue"]}
    assert rules == {"be-inv-eattestation-prescription-standard", "be-inv-location"}


async def test_another_providers_message_is_refused(
    provider: httpx.AsyncClient, app: FastAPI
) -> None:
    other = create_message(with_supplements(claim(provider="12345625004")))
    response = await send(provider, other)  # not-author: a provider sends in his own name only
    assert response.status_code == 403
    assert response.json()["entry"][0]["resource"]["response"]["code"] == "fatal-error"
    assert await job_rows(app) == []


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_PLACES = st.sampled_from(
    [
        (),
        (0,),
        (1,),
        (3,),
        (4,),
        (1, "practitioner"),
        (4, "patient"),
        (4, "item"),
        (4, "careTeam"),
        (0, "focus"),
        (0, "eventCoding"),
        (2, "identifier"),
    ]
)


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(place=_PLACES, value=_JSON)
async def test_any_message_shape_gets_an_answer_never_a_500(
    provider: httpx.AsyncClient, place: tuple[Any, ...], value: Any
) -> None:
    message = gp_message()
    target: Any = message
    if place:
        target = message["entry"][place[0]]["resource"]
        if len(place) > 1:
            target[place[1]] = value
        else:
            message["entry"][place[0]]["resource"] = value
    else:
        message["entry"] = value
    response = await send(provider, message)
    assert response.status_code < 500 or response.status_code == 503, response.text
    assert response.json()["resourceType"] in ("Bundle", "OperationOutcome")


async def test_a_funds_refusal_is_the_guides_reject_message(
    provider: httpx.AsyncClient, worker: Worker
) -> None:
    body = with_supplements(claim(items=[item("999999")]))
    response = await send_while_delivering(provider, worker, create_message(body))
    assert response.status_code == 200, response.text
    answer = response.json()
    header = answer["entry"][0]["resource"]
    assert (header["eventCoding"]["code"], header["response"]["code"]) == ("reject", "ok")
    [outcome] = resources(answer, "OperationOutcome")
    assert header["focus"][0]["reference"].replace("-", "").endswith(outcome["id"])
    [issue] = outcome["issue"]
    assert "UNKNOWN_NOMENCLATURE_CODE" in {c["code"] for c in issue["details"]["coding"]}
    # The fund's path into the Claim, moved into the provider's message.
    assert issue["expression"] == [
        "Bundle.entry[4].resource.ofType(Claim).item[0].productOrService.coding[0].code"
    ]
    [refused] = resources(answer, "ClaimResponse")
    assert refused["outcome"] == "error"
