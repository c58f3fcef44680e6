"""Dispensing over HTTP (issue 6; docs/architecture.md 4, 6; domain RX-7, RX-25): exactly one dispense per
prescription, undo by the same pharmacy within the window, revoke by the author while open,
computed expiry, If-Match, and the dispense searches under the access rules."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from fastapi import FastAPI

from fhir_profiles import systems
from tests.consents.factories import (
    RX_URL,
    SSIN,
    audit_rows,
    created,
    eid_headers,
    informed_consent,
    last_audit,
    prescription,
    reason_of,
    relationship,
)
from tests.dispenses.factories import (
    DELIVERED_CNK,
    MD_URL,
    dispense,
    dispense_rid,
    fetch,
    operation,
    outcome_text,
    parameters,
    revoke,
    state_of,
)
from tests.fixtures.access import OTHER_PHARMACY_NIHDI
from tests.fixtures.auth import OTHER_PRESCRIBER_NIHDI, PHARMACY_NIHDI
from tests.fixtures.clock import Clock
from tests.fixtures.fhir import FHIR_JSON, rid_of

# --- dispense ---------------------------------------------------------------------------------


async def test_RX_7_dispense_by_rid_completes_the_prescription(
    app: FastAPI, author: httpx.AsyncClient, pharmacy: httpx.AsyncClient
) -> None:
    rx = await prescription(author)
    response = await dispense_rid(pharmacy, rid_of(rx))
    assert response.status_code == 201, response.text
    assert response.headers["location"].startswith("http://gateway.test/fhir/MedicationDispense/")
    assert response.headers["etag"] == 'W/"1"'
    md = response.json()
    assert md["status"] == "completed"
    link = md["authorizingPrescription"][0]
    assert link["reference"] == f"MedicationRequest/{rx['id']}"
    assert link["identifier"] == {"system": systems.RID, "value": rid_of(rx)}
    assert md["subject"]["identifier"]["value"] == SSIN  # filled from the prescription
    assert md["performer"][0]["actor"]["identifier"]["value"] == PHARMACY_NIHDI
    assert md["medicationCodeableConcept"]["coding"][0]["code"] == DELIVERED_CNK

    after = await fetch(author, rx["id"])
    assert after["status"] == "completed"
    assert after["meta"]["versionId"] == "2"
    assert state_of(after) == "delivered"
    # docs/architecture.md 6, 8: the dispense and the prescription's transition are both audited.
    rows = [r for r in await audit_rows(app) if r.role == "pharmacist"]
    assert sorted((r.action, r.resource_type, r.reason, r.resource_id) for r in rows) == [
        ("create", "MedicationDispense", "permit-rid", md["id"]),
        ("operation", "MedicationRequest", "permit-rid", rx["id"]),
    ]


async def test_RX_7_second_dispense_is_409_and_audited(
    app: FastAPI,
    author: httpx.AsyncClient,
    pharmacy: httpx.AsyncClient,
    other_pharmacy: httpx.AsyncClient,
) -> None:
    rx = await prescription(author)
    assert (await dispense_rid(pharmacy, rid_of(rx))).status_code == 201
    for who in (other_pharmacy, pharmacy):
        again = await dispense_rid(who, rid_of(rx))
        assert again.status_code == 409, again.text
        assert again.json()["resourceType"] == "OperationOutcome"
        assert "delivered" in outcome_text(again)
    audit = await last_audit(app)
    assert (audit.outcome, audit.reason) == ("deny", "state-conflict")
    found = await pharmacy.get(MD_URL, params={"prescription": f"MedicationRequest/{rx['id']}"})
    assert found.json()["total"] == 1


async def test_RX_7_concurrent_dispenses_exactly_one_wins(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient, other_pharmacy: httpx.AsyncClient
) -> None:
    for _ in range(5):
        rx = await prescription(author)
        responses = await asyncio.gather(
            dispense_rid(pharmacy, rid_of(rx)), dispense_rid(other_pharmacy, rid_of(rx))
        )
        assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]


async def test_RX_25_dispense_by_reference_follows_the_access_rules(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    rx = await prescription(author)
    body = dispense(prescription_id=rx["id"])
    refused = await pharmacy.post(MD_URL, json=body, headers=FHIR_JSON)
    assert reason_of(refused) == "no-consent"  # no RID: the patient's consent and presence count
    await created(patient, informed_consent(proof=False))
    allowed = await pharmacy.post(MD_URL, json=body, headers={**FHIR_JSON, **eid_headers()})
    assert allowed.status_code == 201, allowed.text


async def test_RX_25_unknown_prescription_and_bad_bodies_are_422(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient
) -> None:
    rx = await prescription(author)
    unknown = await dispense_rid(pharmacy, "BEP000000000")
    assert unknown.status_code == 422
    assert unknown.json()["issue"][0]["expression"] == [
        "MedicationDispense.authorizingPrescription[0]"
    ]
    cases = {
        "MedicationDispense.whenHandedOver": {"whenHandedOver": None},
        "MedicationDispense.quantity.value": {"quantity": {"value": 0}},
        "MedicationDispense.medicationCodeableConcept.coding[0].code": {
            "medicationCodeableConcept": {"coding": [{"system": systems.CNK, "code": "12"}]}
        },
        "MedicationDispense.status": {"status": "in-progress"},
    }
    for path, overrides in cases.items():
        response = await dispense_rid(pharmacy, rid_of(rx), **overrides)
        assert response.status_code == 422, (path, response.text)
        assert path in response.json()["issue"][0]["expression"], response.text
    # RX-23: the prescription is coded, so the dispense must name the delivered CNK.
    uncoded = await dispense_rid(
        pharmacy, rid_of(rx), medicationCodeableConcept={"text": "something"}
    )
    assert uncoded.status_code == 422
    assert (await fetch(author, rx["id"]))["status"] == "active"  # nothing was written


async def test_RX_25_pharmacy_cannot_dispense_in_another_pharmacys_name(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient
) -> None:
    rx = await prescription(author)
    performer = [
        {
            "actor": {
                "identifier": {"system": systems.NIHDI_ORGANIZATION, "value": OTHER_PHARMACY_NIHDI}
            }
        }
    ]
    response = await dispense_rid(pharmacy, rid_of(rx), performer=performer)
    assert reason_of(response) == "not-author"


async def test_prescriber_cannot_dispense(author: httpx.AsyncClient) -> None:
    rx = await prescription(author)
    response = await dispense_rid(author, rid_of(rx))
    assert response.status_code == 403


# --- undo -------------------------------------------------------------------------------------


async def test_RX_7_undo_within_window_reopens_the_prescription(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient, other_pharmacy: httpx.AsyncClient
) -> None:
    rx = await prescription(author)
    md = (await dispense_rid(pharmacy, rid_of(rx))).json()
    undone = await operation(pharmacy, f"MedicationDispense/{md['id']}/$undo")
    assert undone.status_code == 200, undone.text
    assert undone.json()["status"] == "entered-in-error"
    assert undone.json()["meta"]["versionId"] == "2"
    reopened = await fetch(author, rx["id"])
    assert (reopened["status"], state_of(reopened)) == ("active", "open")
    # Open again: another pharmacy may now deliver it.
    assert (await dispense_rid(other_pharmacy, rid_of(rx))).status_code == 201
    history = await author.get(MD_URL, params={"prescription": rx["id"]})
    statuses = sorted(e["resource"]["status"] for e in history.json()["entry"])
    assert statuses == ["completed", "entered-in-error"]


async def test_RX_7_undo_by_another_pharmacy_is_403(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient, other_pharmacy: httpx.AsyncClient
) -> None:
    rx = await prescription(author)
    md = (await dispense_rid(pharmacy, rid_of(rx))).json()
    response = await operation(other_pharmacy, f"MedicationDispense/{md['id']}/$undo")
    assert reason_of(response) == "not-dispenser"
    assert (await fetch(author, rx["id"]))["status"] == "completed"


async def test_RX_7_undo_after_the_window_is_409(
    app: FastAPI, clock: Clock, author: httpx.AsyncClient, pharmacy: httpx.AsyncClient
) -> None:
    rx = await prescription(author)
    md = (await dispense_rid(pharmacy, rid_of(rx))).json()
    window = app.state.settings.dispense_undo_window_hours
    clock.now = clock() + timedelta(hours=window, minutes=1)
    late = await operation(pharmacy, f"MedicationDispense/{md['id']}/$undo")
    assert late.status_code == 409, late.text
    assert "24 h" in outcome_text(late)
    assert (await last_audit(app)).reason == "undo-window-passed"


async def test_RX_7_undo_twice_and_after_archiving_are_409(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient
) -> None:
    rx = await prescription(author)
    md = (await dispense_rid(pharmacy, rid_of(rx))).json()
    assert (await operation(pharmacy, f"MedicationDispense/{md['id']}/$undo")).status_code == 200
    twice = await operation(pharmacy, f"MedicationDispense/{md['id']}/$undo")
    assert twice.status_code == 409

    rx2 = await prescription(author)
    md2 = (await dispense_rid(pharmacy, rid_of(rx2))).json()
    archived = await operation(pharmacy, f"MedicationRequest/{rx2['id']}/$archive")
    assert archived.status_code == 200, archived.text
    assert state_of(archived.json()) == "archived"
    late = await operation(pharmacy, f"MedicationDispense/{md2['id']}/$undo")
    assert late.status_code == 409
    assert "archived" in outcome_text(late)


async def test_undo_with_stale_if_match_is_412(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient
) -> None:
    rx = await prescription(author)
    md = (await dispense_rid(pharmacy, rid_of(rx))).json()
    stale = await operation(
        pharmacy, f"MedicationDispense/{md['id']}/$undo", parameters(), **{"If-Match": 'W/"7"'}
    )
    assert stale.status_code == 412
    fresh = await operation(
        pharmacy, f"MedicationDispense/{md['id']}/$undo", parameters(), **{"If-Match": 'W/"1"'}
    )
    assert fresh.status_code == 200


# --- revoke -----------------------------------------------------------------------------------


async def test_RX_7_author_revokes_with_a_reason_and_the_pharmacy_sees_it(
    app: FastAPI, author: httpx.AsyncClient, pharmacy: httpx.AsyncClient
) -> None:
    rx = await prescription(author)
    response = await revoke(author, rx["id"], "dose too high")
    assert response.status_code == 200, response.text
    revoked = response.json()
    assert revoked["status"] == "cancelled"
    assert revoked["statusReason"] == {"text": "dose too high"}
    assert state_of(revoked) == "revoked"
    assert (await last_audit(app)).reason == "permit-author"

    # docs/architecture.md 5 + RX-6 getPrescriptionStatus: the RID shows the state, not the content.
    seen = await pharmacy.get(RX_URL, params={"identifier": rid_of(rx)})
    assert seen.status_code == 200
    shown = seen.json()["entry"][0]["resource"]
    assert shown["status"] == "cancelled"
    assert shown["statusReason"] == {"text": "dose too high"}
    assert "medicationCodeableConcept" not in shown
    assert "dosageInstruction" not in shown
    assert SSIN not in seen.text
    assert shown["meta"]["tag"][0]["code"] == "SUBSETTED"
    refused = await dispense_rid(pharmacy, rid_of(rx))
    assert refused.status_code == 409
    assert "revoked" in outcome_text(refused)


async def test_RX_7_revoke_needs_the_author_and_a_reason(
    author: httpx.AsyncClient, colleague: httpx.AsyncClient, pharmacy: httpx.AsyncClient
) -> None:
    rx = await prescription(author)
    assert reason_of(await revoke(colleague, rx["id"])) == "not-author"
    assert (await revoke(pharmacy, rx["id"])).status_code == 403
    missing = await operation(author, f"MedicationRequest/{rx['id']}/$revoke", parameters())
    assert missing.status_code == 400
    assert missing.json()["issue"][0]["expression"] == ["Parameters.parameter.reason"]
    assert (await fetch(author, rx["id"]))["status"] == "active"


async def test_RX_7_revoke_after_dispense_is_409(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient
) -> None:
    rx = await prescription(author)
    assert (await dispense_rid(pharmacy, rid_of(rx))).status_code == 201
    response = await revoke(author, rx["id"])
    assert response.status_code == 409
    assert "delivered" in outcome_text(response)


async def test_revoke_with_stale_if_match_is_412(author: httpx.AsyncClient) -> None:
    rx = await prescription(author)
    stale = await revoke(author, rx["id"], **{"If-Match": 'W/"0"'})
    assert stale.status_code == 412
    assert (await revoke(author, rx["id"], **{"If-Match": 'W/"1"'})).status_code == 200
    bad = await revoke(author, rx["id"], **{"If-Match": "yesterday"})
    assert bad.status_code == 400


# --- expiry -----------------------------------------------------------------------------------


async def test_RX_7_expired_prescription_is_stopped_and_cannot_be_dispensed(
    clock: Clock, author: httpx.AsyncClient, pharmacy: httpx.AsyncClient
) -> None:
    rx = await prescription(author)
    clock.now = clock() + timedelta(days=100)  # past the default 3 months - 1 day (RX-10)
    shown = await fetch(author, rx["id"])
    assert shown["status"] == "stopped"
    assert shown["statusReason"]["coding"][0]["code"] == "expired"
    assert state_of(shown) == "expired"
    assert shown["meta"]["versionId"] == "1"  # computed: nothing was written

    refused = await dispense_rid(pharmacy, rid_of(rx))
    assert refused.status_code == 409
    assert "validity has ended" in outcome_text(refused)

    mine = await author.get(RX_URL, params={"status": "stopped"})
    assert [e["resource"]["id"] for e in mine.json()["entry"]] == [rx["id"]]
    assert (await author.get(RX_URL, params={"status": "active"})).json()["total"] == 0


# --- in process, reservation, archive ---------------------------------------------------------


async def test_RX_7_in_process_shuts_other_pharmacies_out_until_released(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient, other_pharmacy: httpx.AsyncClient
) -> None:
    rx = await prescription(author)
    rid = rid_of(rx)
    taken = await operation(
        pharmacy, f"MedicationRequest/{rx['id']}/$take-in-process", parameters(rid=rid)
    )
    assert taken.status_code == 200, taken.text
    assert (taken.json()["status"], state_of(taken.json())) == ("active", "in-process")
    blocked = await dispense_rid(other_pharmacy, rid)
    assert blocked.status_code == 409
    assert "another pharmacy" in outcome_text(blocked)
    not_theirs = await operation(
        other_pharmacy, f"MedicationRequest/{rx['id']}/$release", parameters(rid=rid)
    )
    assert not_theirs.status_code == 409
    released = await operation(
        pharmacy, f"MedicationRequest/{rx['id']}/$release", parameters(rid=rid)
    )
    assert state_of(released.json()) == "open"
    assert (await dispense_rid(other_pharmacy, rid)).status_code == 201


async def test_RX_15_patient_reservation_holds_it_for_one_pharmacy(
    author: httpx.AsyncClient,
    pharmacy: httpx.AsyncClient,
    other_pharmacy: httpx.AsyncClient,
    patient: httpx.AsyncClient,
) -> None:
    rx = await prescription(author)
    reserved = await operation(
        patient,
        f"MedicationRequest/{rx['id']}/$reserve",
        parameters(pharmacy=OTHER_PHARMACY_NIHDI),
    )
    assert reserved.status_code == 200, reserved.text
    assert state_of(reserved.json()) == "in-process"
    assert (await dispense_rid(pharmacy, rid_of(rx))).status_code == 409
    assert (await dispense_rid(other_pharmacy, rid_of(rx))).status_code == 201


async def test_RX_15_patient_cancels_a_reservation(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    rx = await prescription(author)
    path = f"MedicationRequest/{rx['id']}"
    await operation(patient, f"{path}/$reserve", parameters(pharmacy=OTHER_PHARMACY_NIHDI))
    released = await operation(patient, f"{path}/$release")
    assert released.status_code == 200, released.text
    assert (await dispense_rid(pharmacy, rid_of(rx))).status_code == 201


async def test_RX_7_archive_needs_a_delivery_by_the_same_pharmacy(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient, other_pharmacy: httpx.AsyncClient
) -> None:
    rx = await prescription(author)
    path = f"MedicationRequest/{rx['id']}/$archive"
    open_one = await operation(pharmacy, path, parameters(rid=rid_of(rx)))
    assert open_one.status_code == 409
    await dispense_rid(pharmacy, rid_of(rx))
    other = await operation(other_pharmacy, path, parameters(rid=rid_of(rx)))
    assert other.status_code in (403, 409)
    assert (await operation(pharmacy, path)).status_code == 200


# --- searches ---------------------------------------------------------------------------------


async def test_author_sees_whether_and_when_it_was_dispensed(
    author: httpx.AsyncClient, colleague: httpx.AsyncClient, pharmacy: httpx.AsyncClient
) -> None:
    rx = await prescription(author)
    by_rx = {"prescription": f"MedicationRequest/{rx['id']}"}
    assert (await author.get(MD_URL, params=by_rx)).json()["total"] == 0
    md = (await dispense_rid(pharmacy, rid_of(rx))).json()
    found = await author.get(MD_URL, params=by_rx)
    assert found.status_code == 200
    entry = found.json()["entry"][0]["resource"]
    assert (entry["id"], entry["whenHandedOver"]) == (md["id"], md["whenHandedOver"])
    assert (await author.get(f"{MD_URL}/{md['id']}")).status_code == 200
    # Another physician without consent and relationship sees neither (CO-12); the search
    # answers as for an unknown prescription (no existence oracle, docs/access.md).
    hidden = await colleague.get(MD_URL, params=by_rx)
    assert (hidden.status_code, hidden.json()["total"]) == (200, 0)
    assert reason_of(await colleague.get(f"{MD_URL}/{md['id']}")) == "no-consent"


async def test_dispenses_by_patient_under_the_access_rules(
    author: httpx.AsyncClient,
    pharmacy: httpx.AsyncClient,
    other_pharmacy: httpx.AsyncClient,
    patient: httpx.AsyncClient,
) -> None:
    rx1, rx2 = await prescription(author), await prescription(author)
    await dispense_rid(pharmacy, rid_of(rx1))
    await dispense_rid(other_pharmacy, rid_of(rx2))
    by_patient = {"patient:identifier": f"{systems.SSIN}|{SSIN}"}
    # Without consent or relationship, a pharmacy sees its own dispenses only.
    own = await pharmacy.get(MD_URL, params=by_patient)
    assert own.json()["total"] == 1
    # With consent and the patient's eID read, the patient's medication history.
    await created(patient, informed_consent(proof=False))
    everything = await pharmacy.get(MD_URL, params=by_patient, headers=eid_headers())
    assert everything.json()["total"] == 2
    mine = await patient.get(MD_URL)
    assert mine.json()["total"] == 2
    other = await patient.get(MD_URL, params={"patient:identifier": f"{systems.SSIN}|90010100123"})
    assert reason_of(other) == "not-own-data"
    assert (await pharmacy.get(MD_URL, params={"status": "completed"})).status_code == 400
    unknown = await pharmacy.get(MD_URL, params={"prescription": "MedicationRequest/nothing"})
    assert (unknown.status_code, unknown.json()["total"]) == (200, 0)
    assert (await pharmacy.get(MD_URL, params={"whenprepared": "x"})).status_code == 400


async def test_relationship_holder_sees_dispenses(
    author: httpx.AsyncClient,
    colleague: httpx.AsyncClient,
    pharmacy: httpx.AsyncClient,
    patient: httpx.AsyncClient,
) -> None:
    rx = await prescription(author)
    await dispense_rid(pharmacy, rid_of(rx))
    await created(patient, informed_consent(proof=False))
    await created(colleague, relationship(OTHER_PRESCRIBER_NIHDI))
    by_patient = {"patient:identifier": f"{systems.SSIN}|{SSIN}"}
    seen = await colleague.get(MD_URL, params=by_patient)
    assert seen.status_code == 200, seen.text
    assert seen.json()["total"] == 1


async def test_lifecycle_operations_check_name_role_and_scope(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    rx = await prescription(author)
    path = f"MedicationRequest/{rx['id']}"
    unknown = await operation(author, f"{path}/$delete")
    assert unknown.status_code == 404
    assert unknown.json()["resourceType"] == "OperationOutcome"
    # $reserve is the patient's (RX-15), $take-in-process a pharmacy's, $revoke the author's.
    reserve = parameters(pharmacy=OTHER_PHARMACY_NIHDI)
    assert (await operation(pharmacy, f"{path}/$reserve", reserve)).status_code == 403
    assert (await operation(author, f"{path}/$take-in-process")).status_code == 403
    assert (await operation(patient, f"{path}/$revoke", parameters(reason="x"))).status_code == 403
    bad = await operation(pharmacy, f"{path}/$take-in-process", parameters(rid="nope"))
    assert bad.status_code == 400
    assert bad.json()["issue"][0]["expression"] == ["Parameters.parameter.rid"]
    assert (await fetch(author, rx["id"]))["meta"]["versionId"] == "1"
