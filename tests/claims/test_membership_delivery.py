"""A claim naming the patient only by his fund's membership number (hl7-be/eattestation ex11),
delivered to the real mock fund (in process, over HTTP/ASGI): the fund's answer names him by
SSIN, and from then on the claim and its answer are his.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from gateway.settings import Settings
from tests.claims.conftest import Worker, job_rows, response_for, state_of
from tests.claims.factories import JAN, MARIE, claim
from tests.claims.message_factories import create_message, with_supplements
from tests.fixtures.app import ClientFactory

JAN_AT_100 = "1000000001328"  # mutualities/data/members.json; the demo manifest lists it
SSIN = "https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/ssin"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The message door answers at once (transient-error): the test delivers itself, step by step.
    return settings.model_copy(update={"message_wait_seconds": 0.0})


async def send_by_membership(provider: httpx.AsyncClient, app: FastAPI, number: str) -> str:
    """The claim id of a GP's message naming the patient by his number at fund 100."""
    message = create_message(with_supplements(claim()), membership=("100", number))
    response = await provider.post(
        "/fhir/$process-message", json=message, headers={"content-type": "application/fhir+json"}
    )
    assert response.status_code == 503, response.text  # queued: resend later for the answer
    [job] = await job_rows(app)
    return str(job.claim_id)


async def test_the_funds_answer_files_the_claim_under_the_patient(
    provider: httpx.AsyncClient, worker: Worker, client_for: ClientFactory, app: FastAPI
) -> None:
    claim_id = await send_by_membership(provider, app, JAN_AT_100)
    jan = await client_for("patient", ssin=JAN)
    # Before the fund answers, nobody knows whose it is: not filed under Jan.
    assert (await jan.get("/fhir/Claim", params={"patient:identifier": JAN})).json()["total"] == 0

    assert await worker.deliver() == 1
    [answer] = await response_for(provider, claim_id)
    assert answer["outcome"] == "complete"
    assert answer["patient"]["identifier"] == {"system": SSIN, "value": JAN}
    assert "reference" not in answer["patient"]  # the fund's message is not kept
    stored = (await provider.get(f"/fhir/Claim/{claim_id}")).json()
    assert state_of(stored) == "delivered"
    # The Claim now names him by SSIN; the number the provider named him by stays on its Patient.
    assert stored["patient"]["identifier"] == {"system": SSIN, "value": JAN}
    [person] = [r for r in stored["contained"] if f"#{r['id']}" == stored["patient"]["reference"]]
    assert [i["value"] for i in person["identifier"]] == [JAN_AT_100, JAN]

    # Jan reads it and finds it among his own; Marie does not.
    assert (await jan.get(f"/fhir/Claim/{claim_id}")).status_code == 200
    found = (await jan.get("/fhir/Claim", params={"patient:identifier": JAN})).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [claim_id]
    [his] = await response_for(jan, claim_id)
    assert his["addItem"][0]["productOrService"]["coding"][0]["code"] == "101032"
    marie = await client_for("patient", ssin=MARIE)
    assert (await marie.get(f"/fhir/Claim/{claim_id}")).status_code == 403

    # Settled later: still his.
    assert await worker.settle() == 1
    assert (await jan.get(f"/fhir/Claim/{claim_id}")).status_code == 200
    [settled] = await response_for(jan, claim_id)
    assert settled["payment"]["amount"]["value"] == 26.03


async def test_an_unknown_membership_number_is_refused_and_filed_under_nobody(
    provider: httpx.AsyncClient, worker: Worker, client_for: ClientFactory, app: FastAPI
) -> None:
    claim_id = await send_by_membership(provider, app, "1000000009999")
    assert await worker.deliver() == 1
    [answer] = await response_for(provider, claim_id)
    assert answer["outcome"] == "error"
    assert [(e["code"]["coding"][0]["code"], e["code"]["text"]) for e in answer["error"]] == [
        ("NOT_A_MEMBER", "Claim.patient.identifier.value")
    ]
    assert answer["patient"]["identifier"]["value"] == "1000000009999"
    jan = await client_for("patient", ssin=JAN)
    assert (await jan.get(f"/fhir/Claim/{claim_id}")).status_code == 403
