"""What a stock FHIR client may try that the gateway refuses on purpose (README "Stock clients"):
each refusal is an OperationOutcome with the right 4xx, never a silent partial answer."""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures.fhir import FHIR_JSON

BATCH = b'{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"metadata"}}]}'


@pytest.mark.parametrize(
    ("method", "url", "status", "expression"),
    [
        ("GET", "/fhir/MedicationRequest?_include=MedicationRequest:subject", 400, "_include"),
        (
            "GET",
            "/fhir/MedicationRequest?_revinclude=MedicationDispense:prescription",
            400,
            "_revinclude",
        ),
        ("GET", "/fhir/MedicationRequest?subject.name=Jan", 400, "subject.name"),
        ("GET", "/fhir/MedicationRequest?_text=insulin", 400, "_text"),
        ("GET", "/fhir/MedicationRequest?_filter=status eq active", 400, "_filter"),
        ("GET", "/fhir/MedicationRequest?_sort=authoredon,_lastUpdated", 400, "_sort"),
        ("DELETE", "/fhir/MedicationRequest/abc", 405, None),
        ("POST", "/fhir", 404, None),
        ("GET", "/fhir/_history", 404, None),
        ("GET", "/fhir/MedicationRequest/_history", 404, None),
    ],
)
async def test_refused_on_purpose(
    prescriber: httpx.AsyncClient, method: str, url: str, status: int, expression: str | None
) -> None:
    response = await prescriber.request(
        method, url, headers=FHIR_JSON, content=BATCH if method == "POST" else None
    )
    assert response.status_code == status, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    if expression is not None:
        assert outcome["issue"][0]["expression"] == [expression]
