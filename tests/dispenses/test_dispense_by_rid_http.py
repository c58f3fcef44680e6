"""The RID on a dispense authorises it (domain RX-17.1, RX-13, RX-25, ID-19, RX-4; issue 12).

Pharmacy software scans the barcode, fetches the prescription by its RID and then posts the
dispense naming the prescription both ways: ``reference`` (the id it was given) and the RID
``identifier``. The RID is the proof of the paper in the pharmacist's hand, so the dispense is
decided as a fetch by RID is (no consent, no relationship); a RID that is not the referenced
prescription's is a 422 and nothing is written. Without a RID the network rules apply
(``test_dispense_http.py::test_RX_25_dispense_by_reference_follows_the_access_rules``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fhir_profiles import systems
from tests.consents.factories import (
    audit_rows,
    created,
    eid_headers,
    exclusion,
    informed_consent,
    prescription,
    reason_of,
    relationship,
)
from tests.dispenses.factories import MD_URL, dispense, fetch, state_of
from tests.fixtures.auth import PHARMACY_NIHDI
from tests.fixtures.fhir import FHIR_JSON, rid_of

LEGACY_RID_SYSTEM = "https://www.ehealth.fgov.be/standards/fhir/NamingSystem/prescription-id"
PRESCRIPTION_LINK = "MedicationDispense.authorizingPrescription[0]"


def link(
    rx: dict[str, Any],
    *,
    reference: bool = True,
    system: str = systems.RID,
    value: str | None = None,
) -> dict[str, Any]:
    """``authorizingPrescription[0]`` as pharmacy software sends it after a RID fetch: the
    reference it was given, the RID as a logical identifier and a display (the shape of the
    hl7-be dispense examples)."""
    rid = {"system": system, "value": rid_of(rx) if value is None else value}
    shaped: dict[str, Any] = {"identifier": rid, "display": "Prescription scanned at the counter"}
    if reference:
        shaped["reference"] = f"MedicationRequest/{rx['id']}"
    return shaped


async def post(
    client: httpx.AsyncClient, prescription_link: dict[str, Any], **headers: str
) -> httpx.Response:
    body = dispense(authorizingPrescription=[prescription_link])
    return await client.post(MD_URL, json=body, headers={**FHIR_JSON, **headers})


async def dispenses_of(client: httpx.AsyncClient, rx: dict[str, Any]) -> int:
    found = await client.get(MD_URL, params={"prescription": f"MedicationRequest/{rx['id']}"})
    assert found.status_code == 200, found.text
    total: int = found.json()["total"]
    return total


# (with the reference, RID system, RID in lower case): ID-19 accepts both RID systems on input,
# RX-4 reads a RID case-insensitively.
SHAPES = {
    "reference-and-rid": (True, systems.RID, False),
    "rid-alone": (False, systems.RID, False),
    "reference-and-legacy-rid-system": (True, LEGACY_RID_SYSTEM, False),
    "reference-and-lower-case-rid": (True, systems.RID, True),
}


@pytest.mark.parametrize(("reference", "system", "lower"), SHAPES.values(), ids=SHAPES.keys())
async def test_rx17_1_the_rid_authorises_a_dispense_without_consent_or_relationship(
    app: FastAPI,
    author: httpx.AsyncClient,
    pharmacy: httpx.AsyncClient,
    reference: bool,
    system: str,
    lower: bool,
) -> None:
    # The patient has given no informed consent and has no relationship with this pharmacy.
    rx = await prescription(author)
    value = rid_of(rx).lower() if lower else None
    response = await post(pharmacy, link(rx, reference=reference, system=system, value=value))
    assert response.status_code == 201, response.text
    stored = response.json()["authorizingPrescription"][0]
    # Stored with the reference and the RID in the profile's system, upper case (ID-19, RX-4).
    assert stored["reference"] == f"MedicationRequest/{rx['id']}"
    assert stored["identifier"] == {"system": systems.RID, "value": rid_of(rx)}
    assert state_of(await fetch(author, rx["id"])) == "delivered"
    rows = [r for r in await audit_rows(app) if r.role == "pharmacist"]
    assert {(r.outcome, r.reason) for r in rows} == {("permit", "permit-rid")}


async def test_rx17_1_a_rid_of_another_prescription_is_422_and_nothing_is_written(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    referenced = await prescription(author)
    other = await prescription(author)
    mismatched = link(referenced, value=rid_of(other))
    refused = await post(pharmacy, mismatched)
    assert refused.status_code == 422, refused.text
    issue = refused.json()["issue"][0]
    assert issue["expression"] == [f"{PRESCRIPTION_LINK}.identifier"]
    assert rid_of(other) not in refused.text
    assert rid_of(referenced) not in refused.text
    # Not a matter of access: with consent and the eID read shown it is still refused.
    await created(patient, informed_consent(proof=False))
    again = await post(pharmacy, mismatched, **eid_headers())
    assert again.status_code == 422, again.text
    for rx in (referenced, other):
        after = await fetch(author, rx["id"])
        assert (after["status"], state_of(after), after["meta"]["versionId"]) == (
            "active",
            "open",
            "1",
        )
        assert await dispenses_of(author, rx) == 0


@pytest.mark.parametrize(
    ("system", "value"),
    [(systems.RID, "BEP12"), ("urn:example:pharmacy-software", "rx-42")],
    ids=["not-a-rid", "not-the-rid-system"],
)
async def test_rx4_an_identifier_beside_the_reference_must_be_a_rid(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient, system: str, value: str
) -> None:
    # It is read, not ignored: a typo in the RID must not turn the dispense into another path.
    rx = await prescription(author)
    response = await post(pharmacy, link(rx, system=system, value=value))
    assert response.status_code == 422, response.text
    assert response.json()["issue"][0]["expression"] == [f"{PRESCRIPTION_LINK}.identifier"]
    assert state_of(await fetch(author, rx["id"])) == "open"


async def test_co10_an_excluded_pharmacy_is_refused_even_with_the_rid(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    # CO-10: an excluded provider never gets access; the RID overrides the visibility flag
    # (RX-13), not the patient's exclusion. A relationship does not help either.
    rx = await prescription(author)
    await created(pharmacy, relationship(PHARMACY_NIHDI, pharmacy=True))
    await created(patient, exclusion(PHARMACY_NIHDI))
    for shape in (link(rx), link(rx, reference=False)):
        assert reason_of(await post(pharmacy, shape)) == "excluded"
    assert state_of(await fetch(author, rx["id"])) == "open"


async def test_rx7_reference_and_rid_dispenses_stay_exactly_once(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient, other_pharmacy: httpx.AsyncClient
) -> None:
    for _ in range(3):
        rx = await prescription(author)
        responses = await asyncio.gather(
            post(pharmacy, link(rx)), post(other_pharmacy, link(rx, reference=False))
        )
        assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
        assert await dispenses_of(author, rx) == 1
