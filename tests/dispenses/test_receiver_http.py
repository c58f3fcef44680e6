"""Who collected (RX-16; issue 16, item 1): a dispense records ``receiver[0]``, the SSIN of the
person who took the medicines; someone other than the patient must hold an active ``collect``
mandate of his, else 422 naming ``MedicationDispense.receiver[0]``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from fhir_profiles import systems
from tests.consents.factories import SSIN, created, prescription
from tests.consents.test_mandates_http import HOLDER, STRANGER, mandate
from tests.dispenses.factories import dispense_rid
from tests.fixtures.fhir import rid_of


def collected_by(ssin: str) -> dict[str, Any]:
    return {"receiver": [{"identifier": {"system": systems.SSIN, "value": ssin}}]}


def issue_paths(response: httpx.Response) -> list[str]:
    return [e for i in response.json()["issue"] for e in i.get("expression", [])]


async def test_RX_16_the_patient_himself_or_a_collect_holder_is_recorded_as_receiver(
    author: httpx.AsyncClient, patient: httpx.AsyncClient, pharmacy: httpx.AsyncClient
) -> None:
    himself = await prescription(author)
    response = await dispense_rid(pharmacy, rid_of(himself), **collected_by(SSIN))
    assert response.status_code == 201, response.text
    await created(patient, mandate("collect"))
    rx = await prescription(author)
    response = await dispense_rid(pharmacy, rid_of(rx), **collected_by(HOLDER))
    assert response.status_code == 201, response.text
    assert response.json()["receiver"][0]["identifier"]["value"] == HOLDER


@pytest.mark.parametrize("granted", [None, "view"])
async def test_RX_16_someone_without_a_collect_mandate_is_refused_as_receiver(
    author: httpx.AsyncClient,
    patient: httpx.AsyncClient,
    pharmacy: httpx.AsyncClient,
    granted: str | None,
) -> None:
    if granted is not None:
        await created(patient, mandate(granted))
    rx = await prescription(author)
    for who in (HOLDER, STRANGER):
        response = await dispense_rid(pharmacy, rid_of(rx), **collected_by(who))
        assert response.status_code == 422, response.text
        assert issue_paths(response) == ["MedicationDispense.receiver[0]"]
        assert who not in response.text
    # Nothing was dispensed: the patient still collects it himself.
    assert (await dispense_rid(pharmacy, rid_of(rx))).status_code == 201


async def test_RX_16_a_receiver_that_is_no_ssin_is_422(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient
) -> None:
    rx = await prescription(author)
    body = {"receiver": [{"identifier": {"system": systems.SSIN, "value": "12345678901"}}]}
    response = await dispense_rid(pharmacy, rid_of(rx), **body)
    assert response.status_code == 422, response.text
    assert issue_paths(response) == ["MedicationDispense.receiver[0]"]
