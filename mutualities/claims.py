"""Read what a fund needs from a FHIR R4 ``Claim`` (an eAttest create or cancel, domain AT-3, AT-6).

Pure functions over the decoded JSON. They are liberal about what they ignore (a fund reads only the
elements below; anything else may be present) and precise about what they refuse: every problem is a
:class:`~mutualities.errors.Fault` with the FHIRPath of the element, all problems at once.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeGuard

import orjson

from mutualities import systems
from mutualities.errors import ErrorCode, Fault

_SSIN = re.compile(r"^\d{11}$")
# ID-6: 11 digits, or the deprecated 8-digit form without the qualification.
_NIHDI = re.compile(r"^\d{8}(\d{3})?$")
_FUND = re.compile(r"^\d{3}$")
_MEMBERSHIP = re.compile(r"^\d{1,20}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
CANCEL_REASONS = frozenset("ABCDEFG")
MAX_COUNT = 99


@dataclass(frozen=True)
class ClaimItem:
    """One attested service (AT-3: per service a code, a date, a count)."""

    index: int  # position in Claim.item, for FHIRPath
    sequence: int
    coding_index: int  # position of the nomenclature coding in productOrService.coding
    code: str
    serviced: date
    count: int


@dataclass(frozen=True)
class ClaimRequest:
    # The SSIN; empty while the claim names the patient only by ``membership``, the number this
    # fund gave its member (hl7-be/eattestation ex11): the fund puts the SSIN in once it knows it.
    patient_ssin: str
    provider_nihdi: str
    insurer: str
    type: dict[str, Any] | None  # echoed on the ClaimResponse
    sub_type: dict[str, Any] | None  # the attestation type (AT-2), echoed
    items: tuple[ClaimItem, ...]
    membership: str | None = None

    def fingerprint(self) -> str:
        """What makes two deliveries the same claim: who, whom, for which services.

        Elements such as ``created``, ``id`` or prices may differ between two attempts of the
        gateway's forwarder without making them different claims.
        """
        content = [
            self.patient_ssin or f"membership:{self.membership}",
            self.provider_nihdi,
            self.insurer,
            sorted((i.sequence, i.code, i.serviced.isoformat(), i.count) for i in self.items),
        ]
        return hashlib.sha256(orjson.dumps(content)).hexdigest()


@dataclass(frozen=True)
class CancelRequest:
    attestation: str
    reason: str
    identifier_index: int  # position of the attestation number in Claim.identifier, for FHIRPath


class _Reader:
    """Collects faults while walking the JSON, so that one answer lists every problem."""

    def __init__(self) -> None:
        self.faults: list[Fault] = []

    def fail(
        self, path: str, code: ErrorCode = ErrorCode.INVALID_CLAIM, item: int | None = None
    ) -> None:
        self.faults.append(Fault(code, path, item))

    def obj(self, value: object, path: str, item: int | None = None) -> dict[str, Any] | None:
        if isinstance(value, dict):
            return value
        self.fail(path, item=item)
        return None

    def identifier(
        self,
        claim: dict[str, Any],
        element: str,
        accepted_systems: frozenset[str],
        pattern: re.Pattern[str],
    ) -> str | None:
        """``Claim.<element>.identifier.value`` when its system is one of ``accepted_systems``."""
        path = f"Claim.{element}"
        reference = self.obj(claim.get(element), path)
        if reference is None:
            return None
        identifier = self.obj(reference.get("identifier"), f"{path}.identifier")
        if identifier is None:
            return None
        if identifier.get("system") not in accepted_systems:
            self.fail(f"{path}.identifier.system")
            return None
        value = identifier.get("value")
        if not isinstance(value, str) or not pattern.match(value):
            self.fail(f"{path}.identifier.value")
            return None
        return value


def parse_claim(body: dict[str, Any]) -> ClaimRequest | list[Fault]:
    """A create request (AT-3), or the faults that stop the fund from reading it."""
    reader = _Reader()
    for index, identifier in enumerate(_list(body.get("identifier"))):
        # AT-3 invariant: a create carries no attestation number; the insurer assigns it.
        if isinstance(identifier, dict) and identifier.get("system") == systems.ATTESTATION:
            reader.fail(f"Claim.identifier[{index}]")
    patient, membership = _patient(reader, body)
    provider = reader.identifier(body, "provider", systems.NIHDI_ALIASES, _NIHDI)
    insurer = reader.identifier(body, "insurer", frozenset({systems.INSURER}), _FUND)
    items = _items(reader, body.get("item"))
    if reader.faults or patient is None or provider is None or insurer is None:
        return reader.faults
    return ClaimRequest(
        membership=membership,
        patient_ssin=patient,
        provider_nihdi=provider,
        insurer=insurer,
        type=body["type"] if isinstance(body.get("type"), dict) else None,
        sub_type=body["subType"] if isinstance(body.get("subType"), dict) else None,
        items=tuple(items),
    )


def _patient(reader: _Reader, body: dict[str, Any]) -> tuple[str | None, str | None]:
    """(SSIN, membership number): the patient by SSIN, or by the number this fund gave him."""
    patient = body.get("patient")
    identifier = patient.get("identifier") if isinstance(patient, dict) else None
    if isinstance(identifier, dict) and identifier.get("system") == systems.MEMBERSHIP:
        value = identifier.get("value")
        if isinstance(value, str) and _MEMBERSHIP.match(value):
            return "", value
        reader.fail("Claim.patient.identifier.value")
        return None, None
    return reader.identifier(body, "patient", systems.SSIN_ALIASES, _SSIN), None


def _items(reader: _Reader, value: object) -> list[ClaimItem]:
    if not isinstance(value, list) or not value:
        reader.fail("Claim.item")
        return []
    items: list[ClaimItem] = []
    sequences: set[int] = set()
    for index, raw in enumerate(value):
        path = f"Claim.item[{index}]"
        entry = reader.obj(raw, path)
        if entry is None:
            continue
        sequence = entry.get("sequence", index + 1)
        if not _positive_int(sequence) or sequence in sequences:
            reader.fail(f"{path}.sequence")
            continue
        sequences.add(sequence)
        before = len(reader.faults)
        coding_index, code = _nomenclature(reader, entry, path, sequence)
        serviced = _serviced_date(
            reader, entry.get("servicedDate"), f"{path}.servicedDate", sequence
        )
        count = _count(reader, entry.get("quantity"), f"{path}.quantity.value", sequence)
        if (
            len(reader.faults) == before
            and code is not None
            and serviced is not None
            and count is not None
        ):
            items.append(ClaimItem(index, sequence, coding_index, code, serviced, count))
    return items


def _nomenclature(
    reader: _Reader, entry: dict[str, Any], path: str, sequence: int
) -> tuple[int, str | None]:
    product = reader.obj(entry.get("productOrService"), f"{path}.productOrService", sequence)
    if product is None:
        return 0, None
    codings = _list(product.get("coding"))
    for index, coding in enumerate(codings):
        if isinstance(coding, dict) and coding.get("system") == systems.NIHDI_NOMENCLATURE:
            code = coding.get("code")
            if not isinstance(code, str) or not code:
                reader.fail(f"{path}.productOrService.coding[{index}].code", item=sequence)
                return index, None
            return index, code
    reader.fail(f"{path}.productOrService.coding", item=sequence)
    return 0, None


def _serviced_date(reader: _Reader, value: object, path: str, sequence: int) -> date | None:
    # A full date is required: FHIR allows "2025" or "2025-03", an attestation does not (AT-3).
    if isinstance(value, str) and _DATE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    reader.fail(path, item=sequence)
    return None


def _count(reader: _Reader, quantity: object, path: str, sequence: int) -> int | None:
    value = quantity.get("value") if isinstance(quantity, dict) else None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if _positive_int(value) and value <= MAX_COUNT:
        return value
    reader.fail(path, item=sequence)
    return None


def parse_cancel(body: dict[str, Any]) -> CancelRequest | list[Fault]:
    """A cancel request (AT-6): a Claim with the attestation number and a reason A..G.

    As in hl7-be/eattestation ex13: the number in ``Claim.identifier`` (system
    ``https://www.mycarenet.be/eattest``), the reason in ``Claim.supportingInfo[].code`` (system
    ``be-cs-eattestation-cancel-reason``).
    """
    reader = _Reader()
    attestation: str | None = None
    identifier_index = 0
    for identifier_index, identifier in enumerate(_list(body.get("identifier"))):
        if isinstance(identifier, dict) and identifier.get("system") == systems.ATTESTATION:
            value = identifier.get("value")
            if isinstance(value, str) and value:
                attestation = value
            else:
                reader.fail(f"Claim.identifier[{identifier_index}].value")
            break
    else:
        reader.fail("Claim.identifier")
    reason = _cancel_reason(reader, body.get("supportingInfo"))
    if reader.faults or attestation is None or reason is None:
        return reader.faults
    return CancelRequest(attestation, reason, identifier_index)


def _cancel_reason(reader: _Reader, value: object) -> str | None:
    for index, info in enumerate(_list(value)):
        concept = info.get("code") if isinstance(info, dict) else None
        codings = _list(concept.get("coding")) if isinstance(concept, dict) else []
        for coding_index, coding in enumerate(codings):
            if isinstance(coding, dict) and coding.get("system") == systems.CANCEL_REASON:
                code = coding.get("code")
                if isinstance(code, str) and code in CANCEL_REASONS:
                    return code
                reader.fail(
                    f"Claim.supportingInfo[{index}].code.coding[{coding_index}].code",
                    ErrorCode.INVALID_CANCEL_REASON,
                )
                return None
    reader.fail("Claim.supportingInfo", ErrorCode.INVALID_CANCEL_REASON)
    return None


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _positive_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
