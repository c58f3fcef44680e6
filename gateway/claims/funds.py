"""The wire to the sickness funds: submit, cancel, read the settlement feed (HTTP only).

The contract is the funds' (``mutualities/README.md``): eAttest messages as the hl7-be eattestation
guide has them, ``POST {fund}/$process-message`` with the request Bundle (``eattest-create`` or
``eattest-cancel``; its id, also sent as ``Idempotency-Key``, is the request key), answered with the
response Bundle; ``GET {fund}/settlements?since=``, whose events are response Bundles too. This
module turns every exchange into one of three results, and decides nothing else:

- a ``ClaimResponse`` (200), taken out of the response message: the fund's answer, an
  acknowledgement or a refusal (AT-4, AT-5);
- ``Transient``: no answer or a temporary one (a refused or dropped connection, a timeout, 429,
  5xx): the same request, with the same key, may be sent again;
- ``Permanent``: an answer no retry can change (400, 404, 409: a bug or a configuration error).

Messages carry reason codes and HTTP statuses, never a body: bodies hold SSINs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson

from fhir_profiles.eattest_message import claim_to_message
from fhir_profiles.rules.claim_codes import (
    ATTESTATION,
    CANCEL_REASON,
    EVENT_CANCEL,
    EVENT_CREATE,
    union_of,
)
from gateway.fhir.media import FHIR_JSON

_RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class Transient(Exception):
    """Worth trying again with the same idempotency key."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class Permanent(Exception):
    """The fund (or our configuration) will answer the same way every time."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class FeedPage:
    events: list[dict[str, Any]]
    next_cursor: int


def route(urls: Mapping[str, str], fund_code: str) -> str | None:
    """The configured fund code that serves ``fund_code``: its own, else its union's (ID-13)."""
    if fund_code in urls:
        return fund_code
    union = union_of(fund_code) if fund_code.isdigit() and len(fund_code) == 3 else None
    return union if union in urls else None


def for_fund(claim: dict[str, Any]) -> dict[str, Any]:
    """The stored Claim as a fund receives it: without the gateway's ``meta`` (versions, the
    claim-state tag). Elements keep their positions, so the FHIRPath of a refusal
    (``Claim.item[1].servicedDate``) points into the provider's own claim too."""
    return {key: value for key, value in claim.items() if key != "meta"}


def cancellation(attestation: str, reason: str, claim: dict[str, Any]) -> dict[str, Any]:
    """AT-6: a cancel Claim names the attestation number and one reason (hl7-be/eattestation
    ex13), with the cancelled claim's type, patient, provider and insurer (and the resources it
    contains, which the message gives as its entries)."""
    kept = ("contained", "type", "subType", "patient", "provider", "insurer")
    return {
        "resourceType": "Claim",
        "identifier": [{"system": ATTESTATION, "value": attestation}],
        "status": "active",
        **{key: claim[key] for key in kept if key in claim},
        "use": "claim",
        "supportingInfo": [
            {
                "sequence": 1,
                "category": {"coding": [{"code": "info"}]},
                "code": {"coding": [{"system": CANCEL_REASON, "code": reason}]},
            }
        ],
    }


def answer_of(message: object) -> dict[str, Any] | None:
    """The ClaimResponse of a response message, as the gateway keeps it: the references into the
    message (``urn:uuid``) are dropped, the identifiers beside them say who is meant. ``None``
    when ``message`` is not a response message with one ClaimResponse."""
    if not isinstance(message, dict) or message.get("resourceType") != "Bundle":
        return None
    if message.get("type") != "message" or not isinstance(message.get("entry"), list):
        return None
    resources = [e.get("resource") for e in message["entry"] if isinstance(e, dict)]
    found = [
        r for r in resources if isinstance(r, dict) and r.get("resourceType") == "ClaimResponse"
    ]
    if len(found) != 1:
        return None
    answer = {key: _local(value) for key, value in found[0].items()}
    items = answer.get("addItem")
    if isinstance(items, list):
        answer["addItem"] = [
            {**item, "provider": [_local(p) for p in item["provider"]]}
            if isinstance(item, dict) and isinstance(item.get("provider"), list)
            else item
            for item in items
        ]
    return answer


def _local(value: Any) -> Any:
    if isinstance(value, dict) and str(value.get("reference", "")).startswith("urn:uuid:"):
        return {key: item for key, item in value.items() if key != "reference"}
    return value


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None  # an HTTP date: rare from a fund, and the backoff covers it


def _protocol_code(response: httpx.Response) -> str:
    """The fund's protocol error code (``issue[0].details.coding[0].code``), if it sent one."""
    try:
        outcome = orjson.loads(response.content)
        code = outcome["issue"][0]["details"]["coding"][0]["code"]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        return ""
    return code if isinstance(code, str) and code.isascii() and len(code) <= 60 else ""


def _answer(response: httpx.Response) -> dict[str, Any]:
    status = response.status_code
    if status == 200:
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
        answer = answer_of(body)
        if answer is not None:
            return answer
        raise Transient("BAD_ANSWER: 200 without a ClaimResponse")
    code = _protocol_code(response)
    reason = f"HTTP {status}" + (f" {code}" if code else "")
    if status in _RETRYABLE_STATUSES:
        raise Transient(f"FUND_UNAVAILABLE: {reason}", retry_after=_retry_after(response))
    raise Permanent(f"FUND_REFUSED_REQUEST: {reason}")


class FundClient:
    def __init__(self, http: httpx.AsyncClient, urls: Mapping[str, str], timeout: float) -> None:
        self.http = http
        self.urls = dict(urls)
        self.timeout = timeout

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(sorted(self.urls))

    def _url(self, fund_code: str) -> str:
        url = self.urls.get(fund_code)
        if url is None:
            raise Permanent(f"NO_ROUTE: no URL configured for fund {fund_code}")
        return url

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self.http.request(method, url, timeout=self.timeout, **kwargs)
        except httpx.TimeoutException as exc:
            raise Transient(f"TIMEOUT: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            # Refused, reset, or closed without an answer (the fund may have committed: the retry
            # carries the same key and gets the stored answer).
            raise Transient(f"NO_ANSWER: {type(exc).__name__}") from exc

    async def _message(
        self, fund_code: str, key: str, event: str, claim: dict[str, Any]
    ) -> dict[str, Any]:
        # The request key is the Bundle id (AT-7); the Claim keeps its elements at their places,
        # so a fund's FHIRPath ``Claim.item[1]...`` points into the provider's own claim.
        sent_at = datetime.now(UTC).isoformat(timespec="seconds")
        message = claim_to_message(claim, bundle_id=key, event=event, timestamp=sent_at)
        response = await self._send(
            "POST",
            f"{self._url(fund_code)}/$process-message",
            content=orjson.dumps(message),
            headers={"Idempotency-Key": key, "Content-Type": FHIR_JSON, "Accept": FHIR_JSON},
        )
        return _answer(response)

    async def submit(self, fund_code: str, key: str, claim: dict[str, Any]) -> dict[str, Any]:
        return await self._message(fund_code, key, EVENT_CREATE, claim)

    async def cancel(
        self, fund_code: str, key: str, attestation: str, reason: str, claim: dict[str, Any]
    ) -> dict[str, Any]:
        """``key``: the claim's; the fund keeps one cancellation per attestation number anyway."""
        body = cancellation(attestation, reason, claim)
        return await self._message(fund_code, f"{key}-cancel", EVENT_CANCEL, body)

    async def settlements(self, fund_code: str, since: int, count: int) -> FeedPage:
        """One page of the feed after ``since``; the next cursor is the ``since`` of its ``next``
        link, always present (equal to ``since`` when nothing is new)."""
        response = await self._send(
            "GET",
            f"{self._url(fund_code)}/settlements",
            params={"since": since, "_count": count},
            headers={"Accept": FHIR_JSON},
        )
        if response.status_code != 200:
            if response.status_code in _RETRYABLE_STATUSES:
                raise Transient(f"FUND_UNAVAILABLE: HTTP {response.status_code}")
            raise Permanent(f"FUND_REFUSED_REQUEST: HTTP {response.status_code}")
        try:
            bundle = orjson.loads(response.content)
            answers = [answer_of(entry["resource"]) for entry in bundle.get("entry", [])]
            [next_url] = [
                link["url"] for link in bundle.get("link", []) if link.get("relation") == "next"
            ]
            cursor = int(parse_qs(urlsplit(next_url).query)["since"][0])
        except (orjson.JSONDecodeError, KeyError, ValueError, TypeError, AttributeError) as exc:
            raise Transient("BAD_ANSWER: not a settlement page") from exc
        events = [answer for answer in answers if answer is not None]
        if cursor < since or len(events) != len(answers):
            raise Transient("BAD_ANSWER: not a settlement page")
        return FeedPage(events=events, next_cursor=cursor)
