"""The hl7-be medication guide's own prescription shapes, posted over HTTP and read by a pharmacy.

Each shape follows one of the guide's BeMedicationPrescription examples (``guide_examples``): the
prescriber named through a contained PractitionerRole, products by AMPP package, VMP group or an
imported product known only by name, structured dosages without text, and the validity written as
dateTimes with offsets. What a pharmacy reads back by RID is what the prescriber sent.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
import pytest

from fhir_profiles import systems
from fhir_profiles.dates import BRUSSELS
from tests.consents.factories import RX_URL, reason_of
from tests.dispenses.factories import dispense_rid
from tests.fhir_profiles.guide_examples import (
    GP,
    OTHER_GP,
    ROLE_ID,
    ampp,
    daily_for_three_months,
    dose_mg,
    guide_prescription,
    imported,
    loading_dose,
    practitioner,
    practitioner_role,
    vmp_group,
)
from tests.fixtures.app import ClientFactory
from tests.fixtures.clock import Clock
from tests.fixtures.fhir import FHIR_JSON, rid_of

IMPORTED_NAME = "Midodrine 5 mg 20 tabl. (import)"
PSEUDONYMIZATION = systems.PSEUDONYMIZATION_EXTENSION


@pytest.fixture
def now(clock: Clock) -> datetime:
    """The gateway's clock, frozen at the current second: bodies are dated from it."""
    clock.now = datetime.now(UTC).replace(microsecond=0)
    return clock.now


@pytest.fixture
async def gp(client_for: ClientFactory) -> httpx.AsyncClient:
    """The general practitioner whose NIHDI number the contained PractitionerRole carries."""
    return await client_for("prescriber", nihdi=GP)


async def create(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post(RX_URL, json=body, headers=FHIR_JSON)


async def created(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await create(client, body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def read_by_rid(pharmacy: httpx.AsyncClient, rid: str) -> dict[str, Any]:
    """What the pharmacy reads when it scans the RID (RX-17.1)."""
    response = await pharmacy.get(RX_URL, params={"identifier": rid})
    assert response.status_code == 200, response.text
    entries = response.json()["entry"]
    assert len(entries) == 1
    resource: dict[str, Any] = entries[0]["resource"]
    return resource


def outcome(response: httpx.Response) -> tuple[int, list[str]]:
    return response.status_code, [i.get("expression", [""])[0] for i in response.json()["issue"]]


# --- example 01: contained PractitionerRole, AMPP, QOD without text, dateTime validity ----------


async def test_RX_19_guide_shape_created_and_read_by_the_pharmacy_as_sent(
    now: datetime, gp: httpx.AsyncClient, pharmacy: httpx.AsyncClient
) -> None:
    body = guide_prescription(now)
    rid = rid_of(await created(gp, body))

    shown = await read_by_rid(pharmacy, rid)
    assert shown["status"] == "active"
    assert shown["contained"] == [practitioner_role(GP)]
    # The reference is kept; the NIHDI it resolved to is added where every reader looks.
    assert shown["requester"] == {
        "reference": f"#{ROLE_ID}",
        "identifier": {"system": systems.NIHDI_PROFESSIONAL, "value": GP},
    }
    assert shown["medicationCodeableConcept"] == body["medicationCodeableConcept"]
    assert shown["dosageInstruction"] == body["dosageInstruction"]
    assert "text" not in shown["dosageInstruction"][0]
    assert shown["dispenseRequest"]["validityPeriod"] == body["dispenseRequest"]["validityPeriod"]


async def test_RX_19_guide_shape_with_a_pseudonymised_patient_is_created(
    now: datetime, gp: httpx.AsyncClient
) -> None:
    """As in every guide example, the patient is a pseudonym (ID-21), not a clear SSIN."""
    subject = {
        "identifier": {
            "system": systems.SSIN,
            "value": "urn:be:fgov:ehealth:pseudo:v2:QUJDREVGR0g:eyJhbGciOiJkaXIifQ..c2FtcGxl",
            "_value": {
                "extension": [
                    {
                        "url": PSEUDONYMIZATION,
                        "extension": [
                            {"url": "format", "valueCode": "direct"},
                            {"url": "marker", "valueBoolean": True},
                        ],
                    }
                ]
            },
        }
    }
    response = await create(gp, guide_prescription(now, subject=subject))
    assert response.status_code == 201, response.text
    assert response.json()["subject"] == subject


# --- examples 02-04: other products and structured dosages --------------------------------------


@pytest.mark.parametrize(
    ("medication", "dosage"),
    [
        (ampp("594755-01", "Adalimumab 40 mg/0,4 ml 6 spuiten"), loading_dose()),
        (vmp_group("3889", "bisoprolol oraal 2,5 mg"), daily_for_three_months(2.5)),
        (
            imported(IMPORTED_NAME),
            [{"sequence": 1, "text": "bij lage bloeddruk", **daily_for_three_months(2.5)[0]}],
        ),
        (
            ampp("081352-03", "Furosemide 40 mg tabl. 50"),
            [{"asNeededBoolean": True, "doseAndRate": [dose_mg(40)], "route": {"text": "oral"}}],
        ),
    ],
    ids=["ampp-loading-dose", "vmp-group-daily", "imported-text-and-structure", "as-needed"],
)
async def test_RX_19_guide_products_and_dosages_read_by_the_pharmacy_as_sent(
    now: datetime,
    gp: httpx.AsyncClient,
    pharmacy: httpx.AsyncClient,
    medication: dict[str, Any],
    dosage: list[dict[str, Any]],
) -> None:
    rid = rid_of(await created(gp, guide_prescription(now, medication=medication, dosage=dosage)))
    shown = await read_by_rid(pharmacy, rid)
    assert shown["medicationCodeableConcept"] == medication
    assert shown["dosageInstruction"] == dosage


async def test_RX_22_imported_product_is_dispensed_against_its_name(
    now: datetime, gp: httpx.AsyncClient, pharmacy: httpx.AsyncClient
) -> None:
    coded = rid_of(await created(gp, guide_prescription(now)))
    body = guide_prescription(now, medication=imported(IMPORTED_NAME), identifier=None)
    rid = rid_of(await created(gp, body))

    handed_over = {"text": IMPORTED_NAME}
    response = await dispense_rid(pharmacy, rid, medicationCodeableConcept=handed_over)
    assert response.status_code == 201, response.text
    assert response.json()["medicationCodeableConcept"] == handed_over
    # A coded product still needs the CNK actually delivered (RX-23).
    refused = await dispense_rid(pharmacy, coded, medicationCodeableConcept=handed_over)
    assert outcome(refused) == (422, ["MedicationDispense.medicationCodeableConcept.coding"])


# --- other requester shapes and who the requester is ---------------------------------------------


async def test_RX_19_contained_practitioner_behind_the_role_names_the_prescriber(
    now: datetime, gp: httpx.AsyncClient, pharmacy: httpx.AsyncClient
) -> None:
    role = {**practitioner_role(GP), "practitioner": {"reference": "#dr"}}
    legacy = "https://www.ehealth.fgov.be/standards/fhir/NamingSystem/nihdi-practitioner"
    doctor = practitioner(GP, practitioner_id="dr", system=legacy)
    rid = rid_of(await created(gp, guide_prescription(now, contained=[role, doctor])))
    shown = await read_by_rid(pharmacy, rid)
    assert shown["requester"]["identifier"]["value"] == GP
    # ID-22: the legacy system is emitted as the canonical one.
    assert shown["contained"][1]["identifier"][1] == {
        "system": systems.NIHDI_PROFESSIONAL,
        "value": GP,
    }


async def test_RX_5_contained_requester_must_be_the_caller(
    now: datetime, gp: httpx.AsyncClient
) -> None:
    body = guide_prescription(now, contained=[practitioner_role(OTHER_GP)])
    assert reason_of(await create(gp, body)) == "not-author"


@pytest.mark.parametrize(
    ("requester", "contained", "expression"),
    [
        ({"reference": "#someone-else"}, None, "MedicationRequest.requester.reference"),
        (
            {"reference": "PractitionerRole/7"},
            None,
            "MedicationRequest.requester.reference",
        ),
        (
            None,
            [{**practitioner_role(GP), "practitioner": {"display": "Dr. A. Peeters"}}],
            "MedicationRequest.contained[0].practitioner.identifier",
        ),
    ],
    ids=["no-such-contained-resource", "external-reference", "no-nihdi"],
)
async def test_RX_19_requester_the_gateway_cannot_check_is_422(
    now: datetime,
    gp: httpx.AsyncClient,
    requester: dict[str, Any] | None,
    contained: list[dict[str, Any]] | None,
    expression: str,
) -> None:
    body = guide_prescription(now)
    body["requester"] = requester or body["requester"]
    body["contained"] = contained or body["contained"]
    assert outcome(await create(gp, body)) == (422, [expression])


# --- validity as dateTimes (RX-12) and the expiry reason ----------------------------------------


async def test_RX_12_datetime_end_lasts_until_the_end_of_its_brussels_day(
    now: datetime, clock: Clock, gp: httpx.AsyncClient, pharmacy: httpx.AsyncClient
) -> None:
    today = now.astimezone(BRUSSELS).date()
    # Late evening in New York is the next morning in Brussels: that next day is the last one.
    end = f"{today + timedelta(days=10)}T23:30:00-05:00"
    body = guide_prescription(now)
    body["dispenseRequest"]["validityPeriod"]["end"] = end
    rid = rid_of(await created(gp, body))

    clock.now = brussels(today + timedelta(days=11), 12)
    shown = await read_by_rid(pharmacy, rid)
    assert shown["status"] == "active"
    assert shown["dispenseRequest"]["validityPeriod"]["end"] == end

    clock.now = brussels(today + timedelta(days=12), 12)
    expired = await read_by_rid(pharmacy, rid)
    assert expired["status"] == "stopped"
    # The medication guide's BeMedicationPrescriptionStatusReason code system, as published.
    guide = "https://www.ehealth.fgov.be/standards/fhir/terminology/CodeSystem/BeMedicationPrescriptionStatusReason"
    assert expired["statusReason"]["coding"] == [
        {"system": guide, "code": "expired", "display": "Expired"}
    ]


def brussels(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), BRUSSELS)


# --- the CapabilityStatement names the guide's profiles -----------------------------------------


async def test_metadata_names_the_guide_profiles(anonymous: httpx.AsyncClient) -> None:
    statement = (await anonymous.get("/fhir/metadata")).json()
    profiles = {r["type"]: r.get("profile") for r in statement["rest"][0]["resource"]}
    base = "https://www.ehealth.fgov.be/standards/fhir/medication/StructureDefinition/"
    assert profiles["MedicationRequest"] == base + "BeMedicationPrescription"
    assert profiles["MedicationDispense"] == base + "BeMedicationDispense"
