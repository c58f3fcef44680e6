"""Feedback on prescriptions over HTTP (domain RX-8; issue 16, item 4).

A pharmacy sends the author of a prescription a ``Communication`` (about = the prescription, a
coded reason, the message); the author lists what he received by prescription and by date and
may refuse feedback per prescription (``$set-feedback``). Nobody else sees it: another pharmacy
or prescriber finds nothing and is refused a read, the patient is refused. Every interaction is
audited.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fhir_profiles import systems
from fhir_profiles.dates import BRUSSELS
from tests.communications.factories import (
    URL,
    about,
    feedback,
    flag_of,
    listed,
    send,
    sent,
    set_feedback,
)
from tests.consents.factories import audit_rows, patient_hash, prescription, reason_of
from tests.dispenses.factories import dispense_rid, operation, parameters, revoke
from tests.fhir_profiles.factories import medication_request
from tests.fixtures.app import ClientFactory
from tests.fixtures.auth import BASE_URL, PHARMACY_NIHDI, PRESCRIBER_NIHDI
from tests.fixtures.clock import Clock
from tests.fixtures.fhir import FHIR_JSON, rid_of
from tests.fixtures.nihdi import nihdi

# The author under another competence code (ID-7: the first eight digits name the person).
AUTHOR_AS_SPECIALIST = nihdi(PRESCRIBER_NIHDI[:6], "580")


def feedback_rows(rows: list[Any]) -> list[tuple[str, str, str]]:
    return [(r.action, r.outcome, r.reason) for r in rows if r.resource_type == "Communication"]


# --- sending --------------------------------------------------------------------------------------


async def test_RX_8_a_pharmacy_holding_the_rid_sends_feedback_the_gateway_fills_the_parties(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient, app: FastAPI
) -> None:
    rx = await prescription(author)
    body = feedback(
        about(rx),
        # Whatever the body says of these, the gateway writes its own (RX-8, ID-21).
        sender={"identifier": {"system": systems.NIHDI_ORGANIZATION, "value": "06054321"}},
        recipient=[{"identifier": {"system": systems.NIHDI_PROFESSIONAL, "value": "1"}}],
        subject={"identifier": {"system": systems.SSIN, "value": "90010100123"}},
        sent="2001-01-01T00:00:00Z",
    )
    response = await send(pharmacy, body)

    assert response.status_code == 201, response.text
    assert response.headers["location"].startswith(f"{BASE_URL}/fhir/Communication/")
    message = response.json()
    assert message["status"] == "completed"
    assert message["sender"]["identifier"] == {
        "system": systems.NIHDI_ORGANIZATION,
        "value": PHARMACY_NIHDI,
    }
    assert message["recipient"] == [
        {"identifier": {"system": systems.NIHDI_PROFESSIONAL, "value": PRESCRIBER_NIHDI}}
    ]
    assert message["subject"] == rx["subject"]
    assert datetime.fromisoformat(message["sent"]) > datetime.now(UTC) - timedelta(minutes=5)
    assert message["about"] == [
        {
            "reference": f"MedicationRequest/{rx['id']}",
            "identifier": {"system": systems.RID, "value": rid_of(rx)},
        }
    ]
    assert message["reasonCode"][0]["coding"][0]["code"] == "product-unavailable"
    assert message["payload"] == [
        {"contentString": "Out of stock until Friday; may we deliver the generic?"}
    ]
    rows = await audit_rows(app)
    assert feedback_rows(rows) == [("create", "permit", "permit-rid")]
    assert rows[-1].patient_hmac == patient_hash(app)


async def test_RX_8_the_rid_alone_names_the_prescription(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient
) -> None:
    rx = await prescription(author)
    message = await sent(pharmacy, feedback(about(rx, reference=False), reason="dosage-question"))
    assert message["about"][0]["reference"] == f"MedicationRequest/{rx['id']}"


async def test_RX_8_the_pharmacy_that_holds_or_delivered_it_needs_no_rid(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient, app: FastAPI
) -> None:
    in_process = await prescription(author)
    taken = await operation(
        pharmacy,
        f"MedicationRequest/{in_process['id']}/$take-in-process",
        parameters(rid=rid_of(in_process)),
    )
    assert taken.status_code == 200, taken.text
    delivered = await prescription(author)
    assert (await dispense_rid(pharmacy, rid_of(delivered))).status_code == 201

    for rx in (in_process, delivered):
        await sent(pharmacy, feedback(about(rx, rid=False), reason="patient-refused"))

    created = [row for row in feedback_rows(await audit_rows(app)) if row[0] == "create"]
    assert created == [("create", "permit", "permit-dispenser")] * 2


async def test_RX_8_a_pharmacy_that_may_not_read_the_prescription_cannot_write_about_it(
    author: httpx.AsyncClient, other_pharmacy: httpx.AsyncClient, app: FastAPI
) -> None:
    rx = await prescription(author)
    # No RID, no consent, no relationship: the network rules refuse the read (RX-17, CO-12).
    refused = await send(other_pharmacy, feedback(about(rx, rid=False)))
    assert reason_of(refused) == "no-consent"
    assert feedback_rows(await audit_rows(app)) == [("create", "deny", "no-consent")]


async def test_RX_8_a_rid_of_a_prescription_no_longer_open_shows_its_state_only(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient
) -> None:
    rx = await prescription(author)
    assert (await revoke(author, rx["id"])).status_code == 200
    # RX-6 getPrescriptionStatus: the RID reads the state, not the content to comment on.
    assert reason_of(await send(pharmacy, feedback(about(rx)))) == "not-open"


# --- the author's flag ----------------------------------------------------------------------------


async def test_RX_8_the_author_refuses_feedback_then_accepts_it_again(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient, app: FastAPI
) -> None:
    rx = await prescription(author)
    assert flag_of(rx) is None  # Recip-e's default: feedback accepted

    off = await set_feedback(author, rx["id"], False)
    assert off.status_code == 200, off.text
    assert flag_of(off.json()) is False
    assert off.json()["meta"]["versionId"] == "2"
    refused = await send(pharmacy, feedback(about(rx)))
    assert reason_of(refused) == "feedback-refused"
    assert await listed(author, about=f"MedicationRequest/{rx['id']}") == []

    on = await set_feedback(author, rx["id"], True, **{"if-match": 'W/"2"'})
    assert on.status_code == 200, on.text
    assert flag_of(on.json()) is True
    message = await sent(pharmacy, feedback(about(rx)))
    assert await listed(author, about=f"MedicationRequest/{rx['id']}") == [message["id"]]

    rows = await audit_rows(app)
    flags = [(r.outcome, r.reason) for r in rows if r.action == "operation"]
    assert flags == [("permit", "permit-author")] * 2
    assert feedback_rows(rows)[0] == ("create", "deny", "feedback-refused")


@pytest.mark.parametrize("who", ["pharmacy", "colleague", "patient"])
async def test_RX_8_only_the_author_sets_the_flag(
    who: str,
    author: httpx.AsyncClient,
    pharmacy: httpx.AsyncClient,
    colleague: httpx.AsyncClient,
    patient: httpx.AsyncClient,
) -> None:
    rx = await prescription(author)
    caller = {"pharmacy": pharmacy, "colleague": colleague, "patient": patient}[who]
    response = await set_feedback(caller, rx["id"], False)
    assert response.status_code == 403, response.text
    assert flag_of((await author.get(f"/fhir/MedicationRequest/{rx['id']}")).json()) is None


async def test_RX_8_set_feedback_takes_one_boolean(author: httpx.AsyncClient) -> None:
    rx = await prescription(author)
    for allowed in ("no", None):
        body: dict[str, Any] = {"resourceType": "Parameters"}
        if allowed is not None:
            body["parameter"] = [{"name": "allowed", "valueString": allowed}]
        response = await author.post(
            f"/fhir/MedicationRequest/{rx['id']}/$set-feedback", json=body, headers=FHIR_JSON
        )
        assert response.status_code == 400, response.text
        issue = response.json()["issue"][0]
        assert issue["expression"] == ["Parameters.parameter.allowed"]


async def test_RX_8_a_prescriber_cannot_write_the_flag_into_a_new_prescription(
    author: httpx.AsyncClient,
) -> None:
    body = medication_request(
        extension=[{"url": "urn:ehealth-gateway:extension:feedback", "valueBoolean": False}]
    )
    response = await author.post("/fhir/MedicationRequest", json=body, headers=FHIR_JSON)
    assert response.status_code == 422, response.text
    assert response.json()["issue"][0]["expression"] == ["MedicationRequest.extension[0]"]


# --- who sees it ----------------------------------------------------------------------------------


async def test_RX_8_the_author_lists_feedback_by_prescription_in_any_reference_form(
    author: httpx.AsyncClient,
    pharmacy: httpx.AsyncClient,
    client_for: ClientFactory,
    app: FastAPI,
) -> None:
    rx, other_rx = await prescription(author), await prescription(author)
    first = await sent(pharmacy, feedback(about(rx)))
    second = await sent(pharmacy, feedback(about(rx), reason="other", text="Call me, please."))
    await sent(pharmacy, feedback(about(other_rx)))

    for form in (
        f"MedicationRequest/{rx['id']}",
        rx["id"],
        f"{BASE_URL}/fhir/MedicationRequest/{rx['id']}",
    ):
        assert await listed(author, about=form) == [second["id"], first["id"]]  # newest first
    read = await author.get(f"{URL}/{first['id']}")
    assert read.status_code == 200, read.text
    assert read.json()["payload"] == first["payload"]
    # ID-7: the same physician under another competence code is the same recipient.
    specialist = await client_for("prescriber", nihdi=AUTHOR_AS_SPECIALIST)
    assert len(await listed(specialist)) == 3
    # The pharmacy reads and lists what it sent.
    assert (await pharmacy.get(f"{URL}/{second['id']}")).status_code == 200
    assert len(await listed(pharmacy)) == 3

    rows = feedback_rows(await audit_rows(app))
    assert ("search", "permit", "permit-author") in rows
    assert ("read", "permit", "permit-author") in rows


async def test_RX_8_search_by_sent_date_with_prefixes(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient, clock: Clock
) -> None:
    earlier = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    clock.now = earlier
    created = await author.post(
        "/fhir/MedicationRequest", json=medication_request(now=earlier), headers=FHIR_JSON
    )
    rx = created.json()
    old = await sent(pharmacy, feedback(about(rx)))
    clock.now = earlier + timedelta(days=3)
    new = await sent(pharmacy, feedback(about(rx), reason="dosage-question"))

    middle = (earlier + timedelta(days=1)).isoformat()
    day = earlier.astimezone(BRUSSELS).date().isoformat()
    assert await listed(author, sent=f"ge{middle}") == [new["id"]]
    assert await listed(author, sent=f"lt{middle}") == [old["id"]]
    assert await listed(author, sent=day) == [old["id"]]  # that Brussels day
    assert await listed(author, sent=f"ne{day}") == [new["id"]]
    both = {"sent": [f"ge{day}", f"le{clock.now.isoformat()}"], "about": rx["id"]}
    response = await author.get(URL, params=both)
    assert [e["resource"]["id"] for e in response.json()["entry"]] == [new["id"], old["id"]]
    ascending = await author.get(URL, params={"_sort": "sent"})
    assert [e["resource"]["id"] for e in ascending.json()["entry"]] == [old["id"], new["id"]]
    bad = await author.get(URL, params={"sent": "ap2026-01-01"})
    assert bad.status_code == 400
    assert bad.json()["issue"][0]["expression"] == ["sent"]


async def test_RX_8_other_pharmacies_and_prescribers_never_see_it(
    author: httpx.AsyncClient,
    pharmacy: httpx.AsyncClient,
    other_pharmacy: httpx.AsyncClient,
    colleague: httpx.AsyncClient,
    app: FastAPI,
) -> None:
    rx = await prescription(author)
    message = await sent(pharmacy, feedback(about(rx)))
    for stranger in (other_pharmacy, colleague):
        # Not yours is not there in a search, and 403 on a read (as for the other families).
        assert await listed(stranger, about=f"MedicationRequest/{rx['id']}") == []
        assert await listed(stranger) == []
        assert reason_of(await stranger.get(f"{URL}/{message['id']}")) == "not-author"
        history = await stranger.get(f"{URL}/{message['id']}/_history/1")
        assert reason_of(history) == "not-author"
    denied = [row for row in feedback_rows(await audit_rows(app)) if row[1] == "deny"]
    assert denied == [("read", "deny", "not-author")] * 4


async def test_RX_8_the_patient_is_refused_feedback(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    """[A] Recip-e shows feedback to neither the patient nor the portal: no patient scope covers
    Communication, and the access matrix has no row for it either."""
    rx = await prescription(author)
    message = await sent(pharmacy, feedback(about(rx)))
    for response in (
        await patient.get(URL, params={"about": rx["id"]}),
        await patient.get(f"{URL}/{message['id']}"),
        await send(patient, feedback(about(rx))),
    ):
        assert response.status_code == 403, response.text
        assert response.json()["resourceType"] == "OperationOutcome"


# --- bad bodies -----------------------------------------------------------------------------------


def _cases(rx: dict[str, Any]) -> list[tuple[dict[str, Any], int, str]]:
    coded = {"coding": [{"system": "urn:ehealth-gateway:feedback-reason", "code": "late"}]}
    return [
        (feedback(None), 422, "Communication.about"),
        (
            feedback(about(rx), reasonCode=[coded]),
            422,
            "Communication.reasonCode[0].coding[0].code",
        ),
        (feedback(about(rx), reasonCode=None), 422, "Communication.reasonCode"),
        (feedback(about(rx), payload=None), 422, "Communication.payload[0].contentString"),
        (feedback(about(rx), text="   "), 422, "Communication.payload[0].contentString"),
        (feedback(about(rx), status="in-progress"), 422, "Communication.status"),
        (
            feedback({"reference": f"MedicationDispense/{rx['id']}"}),
            422,
            "Communication.about[0].reference",
        ),
        (
            feedback({"reference": "https://elsewhere.example/fhir/MedicationRequest/1"}),
            422,
            "Communication.about[0].reference",
        ),
        (feedback({"reference": "MedicationRequest/unknown-1"}), 422, "Communication.about[0]"),
        (
            feedback({**about(rx), "identifier": {"system": systems.RID, "value": "BEP000000000"}}),
            422,
            "Communication.about[0].identifier",
        ),
        (
            feedback({"identifier": {"system": "urn:example:other", "value": "x"}}),
            422,
            "Communication.about[0].identifier",
        ),
        ({"resourceType": "Communication", "about": "x"}, 422, "Communication.about"),
    ]


async def test_RX_8_bad_bodies_are_4xx_naming_the_element(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient, app: FastAPI
) -> None:
    rx = await prescription(author)
    for body, status, path in _cases(rx):
        response = await send(pharmacy, body)
        assert response.status_code == status, (path, response.text)
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert path in [e for issue in outcome["issue"] for e in issue.get("expression", [])]
    other = await send(pharmacy, {"resourceType": "MedicationRequest"})
    assert other.status_code == 400
    assert feedback_rows(await audit_rows(app)) == []  # nothing was read or written
    assert await listed(author) == []
