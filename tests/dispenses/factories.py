"""Building dispenses and calling the pharmacy operations over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from fhir_profiles import systems
from tests.consents.factories import RX_URL
from tests.fhir_profiles.factories import overridden
from tests.fixtures.fhir import FHIR_JSON

MD_URL = "/fhir/MedicationDispense"
DELIVERED_CNK = "1234567"
LIFECYCLE = "urn:ehealth-gateway:extension:lifecycle"


def dispense(
    *, rid: str | None = None, prescription_id: str | None = None, **overrides: Any
) -> dict[str, Any]:
    """A valid dispense of one package of ``DELIVERED_CNK``, handed over now."""
    link: dict[str, Any] = (
        {"identifier": {"system": systems.RID, "value": rid}}
        if rid
        else {"reference": f"MedicationRequest/{prescription_id}"}
    )
    body: dict[str, Any] = {
        "resourceType": "MedicationDispense",
        "status": "completed",
        "authorizingPrescription": [link],
        "medicationCodeableConcept": {
            "coding": [{"system": systems.CNK, "code": DELIVERED_CNK}],
        },
        "quantity": {"value": 1, "unit": "package"},
        "whenHandedOver": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return overridden(body, overrides)


async def dispense_rid(client: httpx.AsyncClient, rid: str, **overrides: Any) -> httpx.Response:
    return await client.post(MD_URL, json=dispense(rid=rid, **overrides), headers=FHIR_JSON)


def parameters(**values: Any) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    for name, value in values.items():
        if name == "pharmacy":
            parts.append(
                {
                    "name": name,
                    "valueIdentifier": {"system": systems.NIHDI_ORGANIZATION, "value": value},
                }
            )
        else:
            parts.append({"name": name, "valueString": value})
    # FHIR JSON has no empty arrays: no parameters, no "parameter" element.
    return {"resourceType": "Parameters", **({"parameter": parts} if parts else {})}


async def operation(
    client: httpx.AsyncClient,
    path: str,
    body: dict[str, Any] | None = None,
    **headers: str,
) -> httpx.Response:
    """POST an operation (``MedicationRequest/{id}/$revoke``...), with or without a body."""
    if body is None:
        return await client.post(f"/fhir/{path}", headers=headers)
    return await client.post(f"/fhir/{path}", json=body, headers={**FHIR_JSON, **headers})


async def revoke(
    client: httpx.AsyncClient, rx_id: str, reason: str = "wrong dose", **headers: str
) -> httpx.Response:
    return await operation(
        client, f"MedicationRequest/{rx_id}/$revoke", parameters(reason=reason), **headers
    )


async def fetch(client: httpx.AsyncClient, rx_id: str) -> dict[str, Any]:
    response = await client.get(f"{RX_URL}/{rx_id}")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def state_of(resource: dict[str, Any]) -> str:
    """The gateway state shown on a prescription (the lifecycle extension)."""
    for extension in resource.get("extension", []):
        if extension["url"] == LIFECYCLE:
            return str(next(p["valueCode"] for p in extension["extension"] if p["url"] == "state"))
    return "open"


def outcome_text(response: httpx.Response) -> str:
    issue = response.json()["issue"][0]
    return str(issue.get("diagnostics", ""))
