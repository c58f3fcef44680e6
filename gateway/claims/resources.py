"""How Claim and ClaimResponse are stored: their search columns and the gateway's additions.

Both are resources in ``ResourceStore``: ``author_nihdi`` is the provider's NIHDI number (who may
read them), ``patient_ssin`` the patient (a keyed HMAC at rest), ``status`` where the claim stands
(``model.State``). Identifier tokens: the Claim carries the provider's request key (AT-7, unique
per provider), the ClaimResponse its Claim's id (unique: one answer per claim) and the fund's
attestation number.
"""

from __future__ import annotations

from typing import Any

from fhir_profiles.patients import patient_ssin_of
from fhir_profiles.rules.claim_codes import ATTESTATION
from gateway.claims.model import (
    CLAIM_LINK,
    State,
    attestation_number,
)
from gateway.storage.store import SearchColumns, StoredVersion


def _provider_nihdi(resource: dict[str, Any]) -> str | None:
    identifier = (resource.get("provider") or {}).get("identifier") or {}
    value = identifier.get("value")
    return value if isinstance(value, str) else None


def request_keys(resource: dict[str, Any], system: str) -> list[tuple[str, str]]:
    return [
        (system, str(i["value"]))
        for i in resource.get("identifier", [])
        if isinstance(i, dict) and i.get("system") == system and isinstance(i.get("value"), str)
    ]


def claim_columns(resource: dict[str, Any], state: State, key_system: str) -> SearchColumns:
    return SearchColumns(
        patient_ssin=patient_ssin_of(resource),
        status=state.value,
        author_nihdi=_provider_nihdi(resource),
        identifiers=request_keys(resource, key_system),
    )


def response_resource(answer: dict[str, Any], claim_id: str) -> dict[str, Any]:
    """The fund's ClaimResponse as the gateway stores it: the fund's content, linked to its Claim.

    The fund's ``id`` gives way to the gateway's (the store assigns it); ``request`` names the Claim
    (the fund's own reference, the idempotency key, is kept beside it).
    """
    resource = {key: value for key, value in answer.items() if key not in ("id", "meta")}
    tags = [t for t in (answer.get("meta") or {}).get("tag", []) if isinstance(t, dict)]
    if tags:
        resource["meta"] = {"tag": tags}
    identifiers = [
        i
        for i in answer.get("identifier") or []
        if isinstance(i, dict) and i.get("system") != CLAIM_LINK
    ]
    resource["identifier"] = [*identifiers, {"system": CLAIM_LINK, "value": claim_id}]
    request: dict[str, Any] = {"reference": f"Claim/{claim_id}"}
    fund_request = answer.get("request")
    if isinstance(fund_request, dict) and isinstance(fund_request.get("identifier"), dict):
        request["identifier"] = fund_request["identifier"]
    resource["request"] = request
    return resource


def response_columns(resource: dict[str, Any], claim: StoredVersion, state: State) -> SearchColumns:
    claim_id = claim.logical_id
    number = attestation_number(resource)
    tokens = [(CLAIM_LINK, claim_id)]
    if number is not None:
        tokens.append((ATTESTATION, number))
    return SearchColumns(
        patient_ssin=patient_ssin_of(claim.json()),
        status=state.value,
        author_nihdi=claim.author_nihdi,
        identifiers=tokens,
    )
