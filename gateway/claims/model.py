"""The words of the claims package: where a claim stands, what a fund said, the gateway's URIs.

Where a claim stands is shown on the Claim itself as a ``meta.tag`` (FHIR R4 resource.html#tag:
tags relate a resource to a workflow) in ``urn:ehealth-gateway:claim-state``, and is the Claim's
``status`` search column; the fund's own answer is the linked ClaimResponse (its ``outcome``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final

from fhir_profiles.rules.claim_codes import ATTESTATION

CLAIM: Final = "Claim"
CLAIM_RESPONSE: Final = "ClaimResponse"

STATE_TAG: Final = "urn:ehealth-gateway:claim-state"
# ClaimResponse.identifier naming its Claim: ``?request=Claim/{id}`` is a token lookup, and the
# unique token is what keeps a claim to exactly one stored answer.
CLAIM_LINK: Final = "urn:ehealth-gateway:claim"
# What the funds write (mutualities/README.md, "Answers"; the gateway never imports that package).
FUND_EVENT: Final = "urn:ehealth-gateway:mutuality-event"
FUND_ERROR: Final = "urn:ehealth-gateway:mutuality-error"
IDEMPOTENCY_KEY_SYSTEM: Final = "urn:ehealth-gateway:idempotency-key"


def request_key_system(provider_nihdi: str) -> str:
    """AT-7: a provider's request keys live in the provider's own namespace."""
    return f"urn:ehealth-gateway:request-key:{provider_nihdi}"


class State(StrEnum):
    """Where a claim stands (docs/claims.md)."""

    QUEUED = "queued"  # stored, waiting for (or between) deliveries
    DELIVERED = "delivered"  # the fund acknowledged it with an attestation number (AT-4)
    REFUSED = "refused"  # the fund refused it; the reasons are on the ClaimResponse (AT-5)
    SETTLED = "settled"  # the fund reimbursed the patient (AT-1)
    FAILED = "failed"  # not delivered after the configured attempts; an operator can retry
    CANCELLED = "cancelled"  # the fund confirmed the cancellation (AT-6)


DISPLAY: Final = {
    State.QUEUED: "Queued for the patient's sickness fund",
    State.DELIVERED: "Acknowledged by the sickness fund",
    State.REFUSED: "Refused by the sickness fund: see the ClaimResponse",
    State.SETTLED: "Settled by the sickness fund",
    State.FAILED: "Not delivered: an operator can retry it",
    State.CANCELLED: "Cancelled",
}


class FundEvent(StrEnum):
    """The fund's answers and feed events (its ``meta.tag`` in ``FUND_EVENT``)."""

    ACKNOWLEDGED = "acknowledged"
    REJECTED = "rejected"
    SETTLED = "settled"
    CANCELLED = "cancelled"


# A later event supersedes an earlier one, never the reverse: an acknowledgement replayed after the
# settlement was stored changes nothing (the answer moves forward only).
RANK: Final = {
    FundEvent.ACKNOWLEDGED: 1,
    FundEvent.REJECTED: 1,
    FundEvent.SETTLED: 2,
    FundEvent.CANCELLED: 3,
}
STATE_OF: Final = {
    FundEvent.ACKNOWLEDGED: State.DELIVERED,
    FundEvent.REJECTED: State.REFUSED,
    FundEvent.SETTLED: State.SETTLED,
    FundEvent.CANCELLED: State.CANCELLED,
}


class JobKind(StrEnum):
    SUBMIT = "submit"
    CANCEL = "cancel"


class JobState(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


def state_tag(state: State, reason: str | None = None) -> dict[str, str]:
    display = DISPLAY[state] if reason is None else f"{DISPLAY[state]} ({reason})"
    return {"system": STATE_TAG, "code": state.value, "display": display}


def with_state(resource: dict[str, Any], state: State, reason: str | None = None) -> dict[str, Any]:
    """A copy of ``resource`` whose claim-state tag is ``state`` (other tags are kept)."""
    meta = dict(resource.get("meta") or {})
    tags = [t for t in meta.get("tag", []) if t.get("system") != STATE_TAG]
    meta["tag"] = [*tags, state_tag(state, reason)]
    return {**resource, "meta": meta}


def event_of(answer: dict[str, Any]) -> FundEvent | None:
    """The fund's event tag of a ClaimResponse, or ``None`` when it carries none we know."""
    for tag in (answer.get("meta") or {}).get("tag", []):
        if isinstance(tag, dict) and tag.get("system") == FUND_EVENT:
            try:
                return FundEvent(str(tag.get("code")))
            except ValueError:
                return None
    return None


def attestation_number(answer: dict[str, Any]) -> str | None:
    for identifier in answer.get("identifier") or []:
        if isinstance(identifier, dict) and identifier.get("system") == ATTESTATION:
            value = identifier.get("value")
            return value if isinstance(value, str) else None
    return None
