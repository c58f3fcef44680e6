"""Claims as the gateway's forwarder sends them: plain FHIR R4 JSON with overrides."""

from __future__ import annotations

from typing import Any

from mutualities import systems

# Members of the built-in list (mutualities/data/members.json).
JAN = "85073003328"  # fund 100, standard (gateway demo patient)
ANNE = "70010112363"  # fund 100, preferential
MARIE = "93051822361"  # fund 300, standard (gateway demo patient)
LOTTE = "01010100126"  # fund 500, preferential (gateway demo patient)
NOBODY = "78021223488"  # fund 400
GP = "19234011004"  # demo GP of the gateway
TODAY = "2025-03-14"  # the date of the test clock (Europe/Brussels)


def item(
    code: str = "101032",
    serviced: str = TODAY,
    count: int = 1,
    sequence: int | None = None,
    price: float = 30.03,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "productOrService": {"coding": [{"system": systems.NIHDI_NOMENCLATURE, "code": code}]},
        "servicedDate": serviced,
        "quantity": {"value": count},
        "unitPrice": {"value": price, "currency": "EUR"},
        "net": {"value": round(price * count, 2), "currency": "EUR"},
    }
    if sequence is not None:
        entry["sequence"] = sequence
    return entry


def claim(
    patient: str = JAN,
    provider: str = GP,
    insurer: str = "100",
    items: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    items = items if items is not None else [item()]
    for index, entry in enumerate(items):
        entry.setdefault("sequence", index + 1)
    body: dict[str, Any] = {
        "resourceType": "Claim",
        "status": "active",
        "type": {"coding": [{"system": systems.CLAIM_TYPE, "code": "professional"}]},
        "use": "claim",
        "patient": {"identifier": {"system": systems.SSIN, "value": patient}},
        "created": "2025-03-14T10:00:00+01:00",
        "provider": {"identifier": {"system": systems.NIHDI_PROFESSIONAL, "value": provider}},
        "insurer": {"identifier": {"system": systems.INSURER, "value": insurer}},
        "priority": {"coding": [{"code": "normal"}]},
        "item": items,
        "total": {
            "value": round(sum(i["net"]["value"] for i in items if "net" in i), 2),
            "currency": "EUR",
        },
    }
    body.update(extra)
    return body


def cancel(attestation: str, reason: str | None = "C") -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Claim",
        "identifier": [{"system": systems.ATTESTATION, "value": attestation}],
        "status": "active",
        "use": "claim",
    }
    if reason is not None:
        body["supportingInfo"] = [
            {
                "sequence": 1,
                "category": {"coding": [{"code": "info"}]},
                "code": {"coding": [{"system": systems.CANCEL_REASON, "code": reason}]},
            }
        ]
    return body


def error_codes(response: dict[str, Any]) -> list[tuple[str, str]]:
    """(code, FHIRPath) of each error of a refusal."""
    return [(e["code"]["coding"][0]["code"], e["code"]["text"]) for e in response.get("error", [])]


def answer_of(message: dict[str, Any]) -> dict[str, Any]:
    """The ClaimResponse of a response message (a feed event, an answer to $process-message)."""
    [found] = [
        e["resource"] for e in message["entry"] if e["resource"]["resourceType"] == "ClaimResponse"
    ]
    return found  # type: ignore[no-any-return]


def feed_answers(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """The ClaimResponses of a page of the settlement feed, oldest first."""
    return [answer_of(entry["resource"]) for entry in bundle.get("entry", [])]


def adjudication(entry: dict[str, Any], code: str) -> float:
    for adj in entry["adjudication"]:
        if adj["category"]["coding"][0]["code"] == code:
            return float(adj["amount"]["value"])
    raise KeyError(code)


async def submit(
    client: Any, body: dict[str, Any], key: str, fund: str = "100"
) -> Any:  # httpx.Response
    return await client.post(f"/funds/{fund}/Claim", json=body, headers={"Idempotency-Key": key})
