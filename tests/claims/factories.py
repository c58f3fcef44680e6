"""Attestations as a care provider's software sends them: plain FHIR R4 JSON with overrides.

``claim(patient=MARIE, insurer="300")``; ``item(code="101076", count=2)``; an override of ``None``
removes a top-level element. Dates default to today in Brussels (a service may not be in the
future, and the funds check it against their own clock).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fhir_profiles import systems
from fhir_profiles.dates import brussels_date
from fhir_profiles.rules.claim_codes import ATTESTATION_TYPE, CANCEL_REASON, DUPLICATE_OVERRIDE
from tests.fhir_profiles.factories import overridden
from tests.mutualities.factories import item as funds_item

# Members of the mock funds' built-in list (mutualities/data/members.json).
JAN = "85073003328"  # fund 100
ANNE = "70010112363"  # fund 100, preferential
MARIE = "93051822361"  # fund 300
GP = "19234011004"  # tests.fixtures.auth.PRESCRIBER_NIHDI
OTHER_GP = "12345625004"  # tests.fixtures.auth.OTHER_PRESCRIBER_NIHDI


def today() -> str:
    return brussels_date(datetime.now(UTC)).isoformat()


def item(
    code: str = "101032",
    *,
    serviced: str | None = None,
    count: int = 1,
    price: float = 30.03,
    sequence: int | None = None,
) -> dict[str, Any]:
    """A line of the attestation, on the same shape the funds receive, served today by default."""
    return funds_item(code, serviced or today(), count, sequence, price)


def claim(
    *,
    patient: str = JAN,
    provider: str = GP,
    insurer: str = "100",
    items: list[dict[str, Any]] | None = None,
    attestation_type: str = "generalpractice",
    **overrides: Any,
) -> dict[str, Any]:
    entries = items if items is not None else [item()]
    for index, entry in enumerate(entries):
        entry.setdefault("sequence", index + 1)
    body: dict[str, Any] = {
        "resourceType": "Claim",
        "status": "active",
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/claim-type",
                    "code": "professional",
                }
            ]
        },
        "subType": {"coding": [{"system": ATTESTATION_TYPE, "code": attestation_type}]},
        "use": "claim",
        "patient": {"identifier": {"system": systems.SSIN, "value": patient}},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "provider": {"identifier": {"system": systems.NIHDI_PROFESSIONAL, "value": provider}},
        "insurer": {"identifier": {"system": systems.INSURER, "value": insurer}},
        "item": entries,
        "total": {
            "value": round(sum(e["net"]["value"] for e in entries if "net" in e), 2),
            "currency": "EUR",
        },
    }
    return overridden(body, overrides)


def with_override(body: dict[str, Any]) -> dict[str, Any]:
    """AT-7: the provider knowingly attests the same service again."""
    return {**body, "extension": [{"url": DUPLICATE_OVERRIDE, "valueBoolean": True}]}


def cancel_params(reason: str = "C") -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": "reason", "valueCoding": {"system": CANCEL_REASON, "code": reason}}],
    }
