"""The FHIR R4 resources a fund answers with: ClaimResponse (acknowledged, refused, settled,
cancelled), OperationOutcome for protocol errors, searchset Bundles for the polling endpoints.

Builders return plain dicts; :func:`encode` writes them once with orjson. Stored answers are bytes
and are embedded in Bundles unchanged (``orjson.Fragment``), so a replay is byte-identical.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from mutualities import systems
from mutualities.claims import ClaimRequest
from mutualities.errors import DISPLAY, GUIDE_CODES, Fault, ProtocolError
from mutualities.records import Attestation, Line, brussels_date

FHIR_JSON = "application/fhir+json"
DEFAULT_CLAIM_TYPE: dict[str, Any] = {
    "coding": [{"system": systems.CLAIM_TYPE, "code": "professional"}]
}


class FundEvent:
    """Codes of ``ClaimResponse.meta.tag`` (system ``urn:ehealth-gateway:mutuality-event``)."""

    ACKNOWLEDGED = "acknowledged"
    REJECTED = "rejected"
    SETTLED = "settled"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Parties:
    """Who a ClaimResponse names, each a reference to its entry in the response message
    (``urn:uuid``, as in hl7-be/eattestation ex12) with the identifier beside it, so that the
    ClaimResponse still says who they are once taken out of the message.

    The uuids derive from the fund and the idempotency key: every answer about one claim (the
    acknowledgement, its replays, the settlement, the cancellation) names the same entries.
    """

    patient: str
    provider: str  # the PractitionerRole of the care provider
    practitioner: str
    insurer: str

    @classmethod
    def of(cls, fund: str, key: str | None) -> Parties:
        seed = f"{fund}/{key}" if key is not None else uuid.uuid4().hex

        def ref(part: str) -> str:
            return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{seed}/{part}')}"

        return cls(ref("patient"), ref("provider"), ref("practitioner"), ref("insurer"))


def encode(resource: dict[str, Any]) -> bytes:
    return orjson.dumps(resource)


def _instant(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _money(amount: Decimal) -> dict[str, Any]:
    return {"value": float(amount), "currency": "EUR"}


def _adjudication(system: str, code: str, amount: Decimal) -> dict[str, Any]:
    return {"category": {"coding": [{"system": system, "code": code}]}, "amount": _money(amount)}


def _legal_fee(amount: Decimal) -> dict[str, Any]:
    # AT-4: the legal fee per service, adjudication category "intreatment" (hl7-be/eattestation ex12).
    return _adjudication(systems.DECISION_VALUES, "intreatment", amount)


def _header(
    *,
    resource_id: str,
    event: str,
    fund: str,
    created: datetime,
    outcome: str,
    disposition: str,
    patient: dict[str, Any] | None,
    provider_nihdi: str | None,
    idempotency_key: str | None,
    claim_type: dict[str, Any] | None,
    sub_type: dict[str, Any] | None,
    number: str | None,
    extra_tags: Sequence[dict[str, str]] = (),
    status: str = "active",
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "ClaimResponse",
        "id": resource_id,
        "meta": {"tag": [{"system": systems.MUTUALITY_EVENT, "code": event}, *extra_tags]},
    }
    if number is not None:
        resource["identifier"] = [{"system": systems.ATTESTATION, "value": number}]
    resource.update({"status": status, "type": claim_type or DEFAULT_CLAIM_TYPE})
    if sub_type is not None:
        resource["subType"] = sub_type
    resource["use"] = "claim"
    parties = Parties.of(fund, idempotency_key)
    resource["patient"] = (
        {"reference": parties.patient, "identifier": patient}
        if patient is not None
        else {"display": "patient not identified"}
    )
    resource["created"] = _instant(created)
    resource["insurer"] = {
        "reference": parties.insurer,
        "identifier": {"system": systems.INSURER, "value": fund},
    }
    if provider_nihdi is not None:
        # hl7-be BeEattestationClaimResponse: requestor is the care provider's PractitionerRole.
        resource["requestor"] = _provider(parties, provider_nihdi)
    if idempotency_key is not None:
        resource["request"] = {
            "identifier": {"system": systems.IDEMPOTENCY_KEY, "value": idempotency_key}
        }
    resource["outcome"] = outcome
    resource["disposition"] = disposition
    return resource


def _provider(parties: Parties, nihdi: str) -> dict[str, Any]:
    return {
        "reference": parties.provider,
        "identifier": {"system": systems.NIHDI_PROFESSIONAL, "value": nihdi},
    }


def _patient(ssin: str | None, membership: str | None = None) -> dict[str, Any] | None:
    """The patient's identifier: the SSIN once the fund knows it, even when the claim named him
    by his membership number (the provider learns whom the fund attested for)."""
    if ssin:
        return {"system": systems.SSIN, "value": ssin}
    if membership is not None:
        return {"system": systems.MEMBERSHIP, "value": membership}
    return None


def add_items(
    lines: Sequence[Line],
    *,
    fund: str,
    key: str,
    provider_nihdi: str,
    adjudications: Callable[[Line], list[dict[str, Any]]] | None = None,
) -> list[dict[str, Any]]:
    """hl7-be BeEattestationClaimResponse ``addItem``: per service the provider, the code, the
    date, the count, the legal fee per unit and in all (``net``), and its adjudications (the
    legal fee, ``intreatment``, unless ``adjudications(line)`` gives others)."""
    provider = _provider(Parties.of(fund, key), provider_nihdi)
    items = []
    for line in lines:
        items.append(
            {
                "itemSequence": [line.sequence],
                "provider": [provider],
                "productOrService": {
                    "coding": [{"system": systems.NIHDI_NOMENCLATURE, "code": line.code}]
                },
                "servicedDate": line.serviced.isoformat(),
                "quantity": {"value": line.count},
                "unitPrice": _money(line.legal_fee / line.count),
                "net": _money(line.legal_fee),
                "adjudication": (
                    adjudications(line) if adjudications else [_legal_fee(line.legal_fee)]
                ),
            }
        )
    return items


def acknowledgement(
    claim: ClaimRequest,
    lines: Sequence[Line],
    *,
    number: str,
    fund: str,
    key: str,
    created: datetime,
) -> dict[str, Any]:
    """AT-4: accepted, with the attestation number and the legal fee per service; no amounts paid yet."""
    resource = _header(
        resource_id=number,
        event=FundEvent.ACKNOWLEDGED,
        fund=fund,
        created=created,
        outcome="complete",
        disposition="Attestation accepted",
        patient=_patient(claim.patient_ssin),
        provider_nihdi=claim.provider_nihdi,
        idempotency_key=key,
        claim_type=claim.type,
        sub_type=claim.sub_type,
        number=number,
    )
    resource["addItem"] = add_items(lines, fund=fund, key=key, provider_nihdi=claim.provider_nihdi)
    resource["total"] = [_legal_fee(sum((line.legal_fee for line in lines), Decimal("0.00")))]
    return resource


def rejection(
    faults: Sequence[Fault],
    *,
    fund: str,
    created: datetime,
    claim: ClaimRequest | None,
    key: str | None,
    subject: str = "Attestation",
) -> dict[str, Any]:
    """AT-5: refused, with every coded error and the FHIRPath of its element."""
    codes = sorted({fault.code.value for fault in faults})
    resource = _header(
        resource_id=uuid.uuid4().hex,
        event=FundEvent.REJECTED,
        fund=fund,
        created=created,
        outcome="error",
        disposition=f"{subject} refused: " + ", ".join(codes),
        patient=_patient(claim.patient_ssin, claim.membership) if claim else None,
        provider_nihdi=claim.provider_nihdi if claim else None,
        idempotency_key=key,
        claim_type=claim.type if claim else None,
        sub_type=claim.sub_type if claim else None,
        number=None,
    )
    resource["error"] = [_error(fault) for fault in faults]
    return resource


def _error(fault: Fault) -> dict[str, Any]:
    error: dict[str, Any] = {
        "extension": [{"url": systems.ERROR_EXPRESSION, "valueString": fault.expression}],
    }
    if fault.item_sequence is not None:
        error["itemSequence"] = fault.item_sequence
    error["code"] = {
        "coding": codings(fault.code.value, DISPLAY[fault.code]),
        "text": fault.expression,
    }
    return error


def codings(code: str, display: str | None = None) -> list[dict[str, str]]:
    """The fund's code, and the guide's same code where the guide publishes it."""
    own = {"system": systems.MUTUALITY_ERROR, "code": code}
    if display is not None:
        own["display"] = display
    if code in GUIDE_CODES:
        return [own, {"system": systems.EATTEST_ERRORS, "code": code}]
    return [own]


def settlement(attestation: Attestation, settled_at: datetime) -> dict[str, Any]:
    """AT-1: the reimbursement paid to the patient and the share left to them, per service."""
    resource = _attestation_header(
        attestation,
        resource_id=f"{attestation.number}-settled",
        event=FundEvent.SETTLED,
        created=settled_at,
        disposition="Attestation settled: reimbursement paid to the patient",
    )
    resource["addItem"] = add_items(
        attestation.lines,
        fund=attestation.fund,
        key=attestation.idempotency_key,
        provider_nihdi=attestation.provider_nihdi,
        adjudications=lambda line: [
            _legal_fee(line.legal_fee),
            _adjudication(systems.ADJUDICATION, "benefit", line.reimbursed),
            _adjudication(systems.ADJUDICATION, "copay", line.patient_share),
        ],
    )
    resource["total"] = [
        _legal_fee(attestation.legal_fee),
        _adjudication(systems.ADJUDICATION, "benefit", attestation.reimbursed),
        _adjudication(systems.ADJUDICATION, "copay", attestation.patient_share),
    ]
    resource["payment"] = {
        "type": {"coding": [{"system": systems.PAYMENT_TYPE, "code": "complete"}]},
        "date": brussels_date(settled_at).isoformat(),
        "amount": _money(attestation.reimbursed),
    }
    return resource


def cancellation(attestation: Attestation, reason: str, cancelled_at: datetime) -> dict[str, Any]:
    """AT-6: the insurer confirms the cancellation (status cancelled, as hl7-be/eattestation
    ex14); the reason is a second tag."""
    return _attestation_header(
        attestation,
        resource_id=f"{attestation.number}-cancelled",
        event=FundEvent.CANCELLED,
        created=cancelled_at,
        disposition=f"Attestation cancelled (reason {reason})",
        extra_tags=[{"system": systems.CANCEL_REASON, "code": reason}],
        status="cancelled",
    )


def _attestation_header(
    attestation: Attestation,
    *,
    resource_id: str,
    event: str,
    created: datetime,
    disposition: str,
    extra_tags: Sequence[dict[str, str]] = (),
    status: str = "active",
) -> dict[str, Any]:
    return _header(
        resource_id=resource_id,
        event=event,
        fund=attestation.fund,
        created=created,
        outcome="complete",
        disposition=disposition,
        patient=_patient(attestation.patient_ssin),
        provider_nihdi=attestation.provider_nihdi,
        idempotency_key=attestation.idempotency_key,
        claim_type=attestation.claim_type,
        sub_type=attestation.sub_type,
        number=attestation.number,
        extra_tags=extra_tags,
        status=status,
    )


def operation_outcome(error: ProtocolError, issue_code: str, diagnostics: str) -> bytes:
    return encode(
        {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "error",
                    "code": issue_code,
                    "details": {"coding": codings(error.value)},
                    "diagnostics": diagnostics,
                }
            ],
        }
    )


def searchset(bodies: Sequence[bytes], *, links: dict[str, str], timestamp: datetime) -> bytes:
    """A searchset Bundle around stored ClaimResponses, which are embedded as they were stored."""
    return encode(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "timestamp": _instant(timestamp),
            "total": len(bodies),
            "link": [{"relation": relation, "url": url} for relation, url in links.items()],
            "entry": [
                {"resource": orjson.Fragment(body), "search": {"mode": "match"}} for body in bodies
            ],
        }
    )
