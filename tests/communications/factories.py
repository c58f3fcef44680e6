"""Feedback (RX-8) as pharmacy software sends it, and the author's ``$set-feedback``."""

from __future__ import annotations

from typing import Any

import httpx

from fhir_profiles import systems
from tests.fhir_profiles.factories import overridden
from tests.fixtures.fhir import FHIR_JSON, rid_of

URL = "/fhir/Communication"
REASON_SYSTEM = "urn:ehealth-gateway:feedback-reason"
FLAG = "urn:ehealth-gateway:extension:feedback"


def about(rx: dict[str, Any], *, reference: bool = True, rid: bool = True) -> dict[str, Any]:
    """``about[0]``: the prescription by reference, by its RID, or both."""
    link: dict[str, Any] = {}
    if reference:
        link["reference"] = f"MedicationRequest/{rx['id']}"
    if rid:
        link["identifier"] = {"system": systems.RID, "value": rid_of(rx)}
    return link


def feedback(
    link: dict[str, Any] | None = None,
    *,
    reason: str = "product-unavailable",
    text: str = "Out of stock until Friday; may we deliver the generic?",
    **overrides: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Communication",
        "status": "completed",
        "reasonCode": [{"coding": [{"system": REASON_SYSTEM, "code": reason}]}],
        "payload": [{"contentString": text}],
    }
    if link is not None:
        body["about"] = [link]
    return overridden(body, overrides)


async def send(client: httpx.AsyncClient, body: dict[str, Any], **headers: str) -> httpx.Response:
    return await client.post(URL, json=body, headers={**FHIR_JSON, **headers})


async def sent(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await send(client, body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def listed(client: httpx.AsyncClient, **params: str) -> list[str]:
    """The ids a search finds (one page), checking the total agrees."""
    response = await client.get(URL, params=params)
    assert response.status_code == 200, response.text
    bundle = response.json()
    ids = [entry["resource"]["id"] for entry in bundle.get("entry", [])]
    assert bundle["total"] == len(ids)
    return ids


def flag_parameters(allowed: Any) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": "allowed", "valueBoolean": allowed}],
    }


async def set_feedback(
    client: httpx.AsyncClient, rx_id: str, allowed: Any, **headers: str
) -> httpx.Response:
    return await client.post(
        f"/fhir/MedicationRequest/{rx_id}/$set-feedback",
        json=flag_parameters(allowed),
        headers={**FHIR_JSON, **headers},
    )


def flag_of(resource: dict[str, Any]) -> bool | None:
    """The author's choice shown on a prescription (``None``: never set)."""
    found = [e["valueBoolean"] for e in resource.get("extension", []) if e["url"] == FLAG]
    return found[0] if found else None
