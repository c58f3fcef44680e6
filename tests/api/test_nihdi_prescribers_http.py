"""NIHDI numbers as NIHDI issues them, over HTTP (domain ID-7, ID-8, CO-7, CO-10, RX-5).

Every number is built with its check digits in ``tests.fixtures.nihdi``: physicians registered
since 2019 and home nurses and midwives since 2013 carry modulo-89 check digits, the profession is
the first digit, and the first eight digits name the person under every competence code. A
prescriber's NIHDI number is the one its client was registered with (``client_for``).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.consents.factories import (
    RX_URL,
    SSIN,
    URL,
    created,
    eid_headers,
    exclusion,
    informed_consent,
    prescription,
    reason_of,
    relationship,
)
from tests.dispenses.factories import revoke
from tests.fhir_profiles.factories import medication_request
from tests.fixtures.app import ClientFactory
from tests.fixtures.auth import Auth
from tests.fixtures.fhir import FHIR_JSON
from tests.fixtures.nihdi import nihdi

# One physician, registered in 2019 (modulo 89), first as a GP, then under a specialist title.
GP = nihdi("198765", "004", series=89)
SPECIALIST = nihdi("198765", "580", series=89)
# Another person with the same first six digits in the older series: eight digits tell them apart.
NAMESAKE = nihdi("198765", "004")
OLDER_SPECIALIST = nihdi("171234", "580")  # modulo 97, specialist title 580
DENTIST = nihdi("340515", "301")  # any competence code of a dentist
MIDWIFE = nihdi("478213", "003", series=89)  # NIHDI's competence code for a prescribing midwife
PHARMACIST = nihdi("612345", "000")
NURSE = nihdi("412345", "401", series=89)
MIDWIFE_WITHOUT_003 = nihdi("478213", "002", series=89)

REQUESTER_VALUE = "MedicationRequest.requester.identifier.value"
BY_PATIENT = {"patient:identifier": SSIN}


async def post_prescription(client: httpx.AsyncClient, number: str) -> httpx.Response:
    return await client.post(RX_URL, json=medication_request(nihdi=number), headers=FHIR_JSON)


def ids(bundle: dict[str, Any]) -> list[str]:
    return [entry["resource"]["id"] for entry in bundle.get("entry", [])]


@pytest.mark.parametrize(
    "number",
    [OLDER_SPECIALIST, GP, SPECIALIST, DENTIST, MIDWIFE],
    ids=["specialist-580", "physician-mod89", "specialist-mod89", "dentist", "midwife-003"],
)
async def test_ID_8_physicians_dentists_and_prescribing_midwives_create_prescriptions(
    client_for: ClientFactory, number: str
) -> None:
    prescriber = await client_for("prescriber", nihdi=number)
    response = await post_prescription(prescriber, number)
    assert response.status_code == 201, response.text
    assert response.json()["requester"]["identifier"]["value"] == number


@pytest.mark.parametrize(
    "number",
    [PHARMACIST, NURSE, MIDWIFE_WITHOUT_003],
    ids=["pharmacist", "nurse-mod89", "midwife-without-003"],
)
async def test_ID_8_pharmacist_or_nurse_as_requester_is_422(
    client_for: ClientFactory, number: str
) -> None:
    # Care providers register with the prescriber role to send attestations (docs/claims.md):
    # the profile, not the role, says who may prescribe.
    caller = await client_for("prescriber", nihdi=number)
    response = await post_prescription(caller, number)
    assert response.status_code == 422, response.text
    issues = response.json()["issue"]
    assert [i["details"]["coding"][0]["code"] for i in issues] == ["ID-8"]
    assert issues[0]["expression"] == [REQUESTER_VALUE]
    assert number not in response.text  # the refused value is not echoed


@pytest.mark.parametrize(
    ("number", "qualification"),
    [
        (SPECIALIST, "physician (580)"),
        (MIDWIFE, "midwife (003)"),
        (NURSE, "nurse or midwife (401)"),
        (DENTIST, "dentist (301)"),
    ],
)
async def test_ID_8_the_client_registry_keeps_profession_and_competence_code(
    app: FastAPI, auth: Auth, number: str, qualification: str
) -> None:
    registered = await auth.register("prescriber", number)
    client = await app.state.auth.registry.get(registered.client_id)
    assert (client.nihdi, client.qualification) == (number, qualification)


async def test_ID_7_a_physician_whose_competence_code_changed_keeps_his_prescriptions(
    client_for: ClientFactory,
) -> None:
    as_gp = await client_for("prescriber", nihdi=GP)
    written = await prescription(as_gp, nihdi=GP)
    as_specialist = await client_for("prescriber", nihdi=SPECIALIST)

    # No consent, no relationship: only authorship lets him in, by person (first eight digits).
    assert (await as_specialist.get(f"{RX_URL}/{written['id']}")).status_code == 200
    mine = await as_specialist.get(RX_URL)
    assert mine.status_code == 200
    assert ids(mine.json()) == [written["id"]]
    by_patient = await as_specialist.get(RX_URL, params=BY_PATIENT)
    assert by_patient.status_code == 200
    assert (by_patient.json()["total"], ids(by_patient.json())) == (1, [written["id"]])

    revoked = await revoke(as_specialist, written["id"])
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "cancelled"


async def test_ID_7_the_same_first_six_digits_of_the_other_series_are_another_person(
    client_for: ClientFactory,
) -> None:
    as_gp = await client_for("prescriber", nihdi=GP)
    written = await prescription(as_gp, nihdi=GP)
    namesake = await client_for("prescriber", nihdi=NAMESAKE)
    assert reason_of(await namesake.get(f"{RX_URL}/{written['id']}")) == "no-consent"
    assert ids((await namesake.get(RX_URL)).json()) == []
    assert reason_of(await revoke(namesake, written["id"])) == "not-author"


async def test_CO_10_an_exclusion_under_one_competence_code_bars_another(
    client_for: ClientFactory, author: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    written = await prescription(author)
    await created(patient, informed_consent())
    as_specialist = await client_for("prescriber", nihdi=SPECIALIST)
    await created(as_specialist, relationship(SPECIALIST))
    assert (await as_specialist.get(f"{RX_URL}/{written['id']}")).status_code == 200

    await created(patient, exclusion(GP))  # the patient names him by his GP number
    assert reason_of(await as_specialist.get(f"{RX_URL}/{written['id']}")) == "excluded"
    listed = await as_specialist.get(RX_URL, params=BY_PATIENT)  # his own ones only: none
    assert (listed.status_code, listed.json()["total"]) == (200, 0)


async def test_CO_7_a_relationship_under_one_competence_code_counts_under_another(
    client_for: ClientFactory, author: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    written = await prescription(author)
    await created(patient, informed_consent())
    as_gp = await client_for("prescriber", nihdi=GP)
    registered = await created(as_gp, relationship(GP))
    as_specialist = await client_for("prescriber", nihdi=SPECIALIST)

    assert (await as_specialist.get(f"{RX_URL}/{written['id']}")).status_code == 200
    listed = await as_specialist.get(
        URL, params={**BY_PATIENT, "category": "therapeutic-relationship"}, headers=eid_headers()
    )
    assert listed.status_code == 200, listed.text
    assert ids(listed.json()) == [registered["id"]]  # his own relationship, under either code

    namesake = await client_for("prescriber", nihdi=NAMESAKE)
    assert reason_of(await namesake.get(f"{RX_URL}/{written['id']}")) == "no-relationship"
