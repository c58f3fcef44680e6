"""Factories for profile tests: valid Belgian prescriptions as plain JSON dicts.

A test spells out only what matters to it: ``medication_request(status="draft")``,
``medication_request(dosageInstruction=None)`` (``None`` removes the element).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fhir_profiles import systems
from fhir_profiles.dates import BRUSSELS

# Synthetic numbers that pass their check digits (domain 1.1, ID-7, ID-15).
SSIN = "85073003328"
NIHDI = "19234011004"  # a physician (qualification 004)
CNK = "1439562"


def medication_request(
    *,
    now: datetime | None = None,
    ssin: str = SSIN,
    nihdi: str = NIHDI,
    cnk: str = CNK,
    **overrides: Any,
) -> dict[str, Any]:
    """A valid prescription authored at ``now`` (default: the current time), valid from that day.

    Keyword overrides replace top-level elements; an override of ``None`` removes the element.
    """
    authored = (now or datetime.now(UTC)).astimezone(BRUSSELS)
    body: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "subject": {"identifier": {"system": systems.SSIN, "value": ssin}},
        "requester": {"identifier": {"system": systems.NIHDI_PROFESSIONAL, "value": nihdi}},
        "medicationCodeableConcept": {
            "coding": [{"system": systems.CNK, "code": cnk, "display": "Topazolam tab 50x 1,0mg"}]
        },
        "authoredOn": authored.isoformat(timespec="seconds"),
        "dosageInstruction": [{"text": "1 tablet in the evening"}],
        "dispenseRequest": {
            "validityPeriod": {"start": authored.date().isoformat()},
            "quantity": {"value": 1, "unit": "package"},
        },
    }
    return overridden(body, overrides)


def overridden(body: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``body`` with top-level elements replaced by ``overrides``; an override of ``None`` removes
    the element (the factories' common keyword convention)."""
    for key, value in overrides.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body
