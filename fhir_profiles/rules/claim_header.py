"""The attestation as a whole: identifiers, status, use, attestation type, created (AT-2, AT-3, AT-7).

Every rule takes the JSON dict of a structurally valid ``Claim`` and returns one issue per violation.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any, Final

from fhir_profiles._json import canonical_system, items, obj, text
from fhir_profiles.dates import brussels_date, parse_fhir_datetime
from fhir_profiles.event_time import RANGE_TEXT, is_event_time
from fhir_profiles.issues import Issue
from fhir_profiles.rules.claim_codes import (
    ATTESTATION,
    ATTESTATION_TYPE,
    ATTESTATION_TYPES,
    DUPLICATE_OVERRIDE,
)

# [A] Tolerated clock difference between the provider's software and the gateway (as RX-10).
CLOCK_SKEW: Final = timedelta(minutes=5)


def rule_identifier(body: Mapping[str, Any]) -> list[Issue]:
    """AT-3 invariant (create): no attestation number; the insurer assigns it (AT-4)."""
    message = "a new attestation carries no eAttest number: the insurer assigns it"
    return [
        Issue("business-rule", f"Claim.identifier[{i}]", message, "AT-3")
        for i, identifier in enumerate(items(body.get("identifier")))
        if isinstance(identifier, dict) and canonical_system(identifier) == ATTESTATION
    ]


def rule_status(body: Mapping[str, Any]) -> list[Issue]:
    """BeEattestationClaim fixes ``status`` to ``active``; an absent status becomes ``active``."""
    if body.get("status") in (None, "active"):
        return []
    return [Issue("value", "Claim.status", "a new attestation must have status active", "AT-3")]


def rule_use(body: Mapping[str, Any]) -> list[Issue]:
    """BeEattestationClaim fixes ``use`` to ``claim`` (not a preauthorization or predetermination)."""
    if body.get("use") in (None, "claim"):
        return []
    return [Issue("value", "Claim.use", "an attestation has use claim", "AT-3")]


def rule_attestation_type(body: Mapping[str, Any]) -> list[Issue]:
    """AT-2, AT-3: the attestation type 1..1, on ``subType`` as in BeEattestationClaim.

    ``type`` stays the FHIR claim category (``professional``, ``oral``); the eAttest type is one of
    physiotherapy, dentistry, generalpractice, specializedmedicine, speechtherapy.
    """
    concept = obj(body.get("subType"))
    if concept is None:
        message = "the attestation type is required in subType (AT-2 codes)"
        return [Issue("required", "Claim.subType", message, "AT-2")]
    codings = [obj(c) or {} for c in items(concept.get("coding"))]
    typed = [(i, c) for i, c in enumerate(codings) if text(c.get("system")) == ATTESTATION_TYPE]
    if not typed:
        message = "subType needs a coding in the eAttest attestation type code system"
        return [Issue("required", "Claim.subType.coding", message, "AT-2")]
    return [
        Issue(
            "code-invalid",
            f"Claim.subType.coding[{i}].code",
            "not an attestation type: " + ", ".join(sorted(ATTESTATION_TYPES)),
            "AT-2",
        )
        for i, coding in typed
        if coding.get("code") not in ATTESTATION_TYPES
    ]


def created_day(body: Mapping[str, Any]) -> date | None:
    """The Brussels day of ``created`` (a FHIR date or a full dateTime with zone, in an event's
    years: ``event_time``), or ``None``."""
    raw = text(body.get("created"))
    if raw is None:
        return None
    if len(raw) == 10:
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            return None
        return day if is_event_time(day) else None
    moment = parse_fhir_datetime(raw)
    # The year is checked before converting: 0001 at +14:00 has no UTC.
    return None if moment is None or not is_event_time(moment) else brussels_date(moment)


def rule_created(body: Mapping[str, Any], *, now: datetime) -> list[Issue]:
    """AT-3: ``created`` (1..1 in FHIR) is a day or a dateTime with zone, and not in the future."""
    raw = text(body.get("created"))
    if raw is None:
        return [Issue("required", "Claim.created", "created is required", "AT-3")]
    day = created_day(body)
    if day is None:
        message = f"created needs a full date, or a date and time with a time zone, {RANGE_TEXT}"
        return [Issue("value", "Claim.created", message, "AT-3")]
    moment = parse_fhir_datetime(raw)
    future = (
        moment > now + CLOCK_SKEW if moment is not None else day > brussels_date(now + CLOCK_SKEW)
    )
    if future:
        return [Issue("business-rule", "Claim.created", "created is in the future", "AT-3")]
    return []


def duplicate_override(body: Mapping[str, Any]) -> bool:
    """Whether the provider asks to send a second attestation of a service anyway (AT-7)."""
    return any(
        isinstance(ext, dict)
        and ext.get("url") == DUPLICATE_OVERRIDE
        and ext.get("valueBoolean") is True
        for ext in items(body.get("extension"))
    )


def rule_duplicate_override(body: Mapping[str, Any]) -> list[Issue]:
    """AT-7: the override is an explicit ``valueBoolean``; anything else would be ambiguous."""
    return [
        Issue(
            "value",
            f"Claim.extension[{i}]",
            "the duplicate override takes valueBoolean true or false",
            "AT-7",
        )
        for i, ext in enumerate(items(body.get("extension")))
        if isinstance(ext, dict)
        and ext.get("url") == DUPLICATE_OVERRIDE
        and not isinstance(ext.get("valueBoolean"), bool)
    ]
