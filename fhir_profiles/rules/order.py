"""The order itself: identifiers, status, intent, authoredOn and validity (domain RX-5..RX-12)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from fhir_profiles import systems
from fhir_profiles._json import authored_on, canonical_system, items, obj, text
from fhir_profiles.dates import (
    brussels_date,
    default_validity_end,
    max_validity_end,
    parse_fhir_datetime,
    parse_fhir_day,
)
from fhir_profiles.event_time import RANGE_TEXT, is_event_time
from fhir_profiles.issues import Issue

_MR: Final = "MedicationRequest"
_VALIDITY: Final = "MedicationRequest.dispenseRequest.validityPeriod"
# [A] Tolerated clock difference between the prescribing software and the gateway.
CLOCK_SKEW: Final = timedelta(minutes=5)
# RX-12: the reason code a client looks for when the validity is too long.
VALIDITY_TOO_LONG: Final = "VALIDITY_TOO_LONG"


def rule_identifier(body: Mapping[str, Any]) -> list[Issue]:
    """RX-5: the gateway assigns the RID; a client may send its own identifiers, never a RID.

    The legacy RID system (ID-19) counts as a RID: normalise_system folds it in.
    """
    message = "the RID is assigned by the gateway; do not send a Recip-e identifier on create"
    return [
        Issue("business-rule", f"{_MR}.identifier[{i}]", message, "RX-5")
        for i, identifier in enumerate(items(body.get("identifier")))
        if isinstance(identifier, dict) and canonical_system(identifier) == systems.RID
    ]


def rule_status(body: Mapping[str, Any]) -> list[Issue]:
    """RX-6: a new prescription is open, i.e. ``active``; an absent status is set to ``active``."""
    if body.get("status") in (None, "active"):
        return []
    message = "a new prescription must have status active"
    return [Issue("value", f"{_MR}.status", message, "RX-6")]


def rule_intent(body: Mapping[str, Any]) -> list[Issue]:
    """RX-19: a prescription is an ``order``, as in the profile examples [A: enforced on create]."""
    if body.get("intent") == "order":
        return []
    return [Issue("value", f"{_MR}.intent", "a prescription must have intent order", "RX-19")]


def rule_authored_on(body: Mapping[str, Any], *, now: datetime) -> list[Issue]:
    """RX-19, RX-10: ``authoredOn`` is required and not in the future.

    It fixes the creation date from which validity is counted (RX-10), so a future date would
    stretch validity. [A] A full dateTime with zone is required, and 5 minutes of skew tolerated.
    """
    path = f"{_MR}.authoredOn"
    if body.get("authoredOn") is None:
        return [Issue("required", path, "authoredOn is required", "RX-19")]
    created = authored_on(body)
    if created is None:
        return [Issue("value", path, "authoredOn needs a date, a time and a time zone", "RX-19")]
    if not is_event_time(created):
        return [Issue("value", path, f"authoredOn is a date {RANGE_TEXT}", "RX-19")]
    if created > now + CLOCK_SKEW:
        return [Issue("business-rule", path, "authoredOn is in the future", "RX-10")]
    return []


def rule_validity(body: Mapping[str, Any]) -> list[Issue]:
    """RX-10..RX-12: start required and not before creation; end not before start nor past the max.

    Start and end are FHIR ``date`` or ``dateTime`` values (the hl7-be examples write
    ``2026-01-18T00:00:00+01:00``); a dateTime stands for the Brussels calendar day of that instant,
    whatever its offset, and the prescription is valid until the end of its last day (RX-12).
    Creation is the Brussels date of ``authoredOn``; when that is unusable ``rule_authored_on``
    reports it and only the checks that need no creation date run here.
    """
    period = obj((obj(body.get("dispenseRequest")) or {}).get("validityPeriod")) or {}
    raw_start, raw_end = text(period.get("start")), text(period.get("end"))
    if raw_start is None:
        message = "the start of validity is required"
        return [Issue("required", f"{_VALIDITY}.start", message, "RX-11")]
    start = parse_fhir_day(raw_start)
    if start is None:
        return [Issue("value", f"{_VALIDITY}.start", "the start of validity needs a day", "RX-11")]
    end = None if raw_end is None else parse_fhir_day(raw_end)
    if raw_end is not None and end is None:
        return [Issue("value", f"{_VALIDITY}.end", "the end of validity needs a day", "RX-12")]
    issues: list[Issue] = []
    if end is not None and (end < start or _instants_reversed(raw_start, raw_end)):
        message = "the end of validity is before its start"
        issues.append(Issue("invariant", f"{_VALIDITY}.end", message, "RX-12"))
    authored = authored_on(body)
    if authored is None:
        return issues
    created = brussels_date(authored)
    if start < created:
        message = "validity cannot start before the prescription is created"
        issues.append(Issue("business-rule", f"{_VALIDITY}.start", message, "RX-12"))
    if end is None and start > default_validity_end(created):
        # RX-11: a deferred start must fall inside the validity window; without an explicit end
        # that window is the default one.
        message = "a start after the default end of validity needs an explicit end"
        issues.append(Issue("business-rule", f"{_VALIDITY}.start", message, "RX-11"))
    if end is not None and end > max_validity_end(created):
        message = (
            f"{VALIDITY_TOO_LONG}: validity ends at most one year minus one day after creation"
        )
        issues.append(Issue("business-rule", f"{_VALIDITY}.end", message, "RX-12"))
    return issues


def _instants_reversed(raw_start: str, raw_end: str | None) -> bool:
    """FHIR per-1: two full dateTimes on the same Brussels day may still be in the wrong order."""
    start = parse_fhir_datetime(raw_start)
    end = None if raw_end is None else parse_fhir_datetime(raw_end)
    return start is not None and end is not None and end < start
