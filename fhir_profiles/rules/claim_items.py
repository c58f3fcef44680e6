"""What was done and what it cost: services, dates, counts, fees (AT-3, ID-18).

Every rule takes the JSON dict of a structurally valid ``Claim`` and returns one issue per violation.
Amounts are compared as decimals, to the cent: FHIR JSON numbers are exact decimals (FHIR R4
datatypes, decimal), so ``0.1 + 0.2`` must equal ``0.3`` here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

from fhir_profiles import systems
from fhir_profiles._json import canonical_system, items, obj, text
from fhir_profiles.dates import brussels_date
from fhir_profiles.event_time import RANGE_TEXT, is_event_time
from fhir_profiles.issues import Issue
from fhir_profiles.rules.claim_codes import CURRENCY

_CODE: Final = re.compile(r"^[0-9]{6}$")
_DAY: Final = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_CENT: Final = Decimal("0.01")


@dataclass(frozen=True)
class Service:
    """One attested service as the duplicate rule sees it (AT-7: date, code, count)."""

    serviced: date
    code: str
    count: int


def _nomenclature(entry: Mapping[str, Any], path: str) -> tuple[str | None, list[Issue]]:
    """ID-18: exactly one coding, in the NIHDI nomenclature, with a 6-digit code."""
    concept = obj(entry.get("productOrService")) or {}
    codings = items(concept.get("coding"))
    coded = [
        (j, obj(c) or {})
        for j, c in enumerate(codings)
        if canonical_system(obj(c) or {}) == systems.NIHDI_NOMENCLATURE
    ]
    if not coded:
        message = "the service needs a coding in the NIHDI nomenclature"
        return None, [Issue("required", f"{path}.productOrService.coding", message, "ID-18")]
    if len(codings) > 1:
        message = "one service per item: give exactly one nomenclature coding"
        return None, [Issue("business-rule", f"{path}.productOrService.coding", message, "AT-3")]
    j, coding = coded[0]
    code = text(coding.get("code"))
    if code is None or not _CODE.match(code):
        message = "a nomenclature code has 6 digits"
        return None, [Issue("value", f"{path}.productOrService.coding[{j}].code", message, "ID-18")]
    return code, []


def _serviced(entry: Mapping[str, Any], path: str, today: date) -> tuple[date | None, list[Issue]]:
    """AT-3: the date of the service 1..1, a full day, not after today in Brussels."""
    if entry.get("servicedPeriod") is not None:
        message = "give the day of the service in servicedDate, not a period"
        return None, [Issue("not-supported", f"{path}.servicedPeriod", message, "AT-3")]
    raw = text(entry.get("servicedDate"))
    if raw is None:
        message = "the date of the service is required"
        return None, [Issue("required", f"{path}.servicedDate", message, "AT-3")]
    day = None
    if _DAY.match(raw):
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            day = None
    if day is None or not is_event_time(day):
        message = f"the date of the service needs a year, a month and a day, {RANGE_TEXT}"
        return None, [Issue("value", f"{path}.servicedDate", message, "AT-3")]
    if day > today:
        message = "the date of the service is in the future"
        return None, [Issue("business-rule", f"{path}.servicedDate", message, "AT-3")]
    return day, []


def _count(entry: Mapping[str, Any], path: str) -> tuple[int | None, list[Issue]]:
    """AT-3: the count 1..1, a whole number of at least 1."""
    quantity = obj(entry.get("quantity"))
    value = None if quantity is None else quantity.get("value")
    where = f"{path}.quantity" if quantity is None else f"{path}.quantity.value"
    if value is None:
        return None, [Issue("required", where, "the number of services is required", "AT-3")]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None, [Issue("value", where, "the count must be a number", "AT-3")]
    if value != int(value) or value < 1:
        return None, [Issue("value", where, "the count is a whole number of at least 1", "AT-3")]
    return int(value), []


def money(value: Any, path: str, what: str) -> tuple[Decimal | None, list[Issue]]:
    """A ``Money`` in euro with a JSON number of at least 0 (AT-3: fees are in EUR)."""
    amount = obj(value)
    if amount is None:
        return None, [Issue("required", path, f"the {what} is required", "AT-3")]
    issues: list[Issue] = []
    if amount.get("currency") != CURRENCY:
        issues.append(Issue("value", f"{path}.currency", "amounts are in EUR", "AT-3"))
    raw = amount.get("value")
    if raw is None:
        issues.append(Issue("required", f"{path}.value", f"the {what} needs a value", "AT-3"))
        return None, issues
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        issues.append(Issue("value", f"{path}.value", "an amount must be a number", "AT-3"))
        return None, issues
    decimal = Decimal(str(raw))
    if decimal < 0:
        issues.append(Issue("value", f"{path}.value", "an amount cannot be negative", "AT-3"))
    return (None if issues else decimal), issues


def _same(a: Decimal, b: Decimal) -> bool:
    return a.quantize(_CENT) == b.quantize(_CENT)


def rule_items(body: Mapping[str, Any], *, now: datetime) -> list[Issue]:
    """AT-3: 1..* services (none only on a cancel), each coded, dated, counted and priced.

    ``net`` must equal ``unitPrice`` times the count, to the cent (FHIR R4 Claim.item.net) [A].
    """
    entries = items(body.get("item"))
    if not entries:
        message = "an attestation lists at least one service"
        return [Issue("required", "Claim.item", message, "AT-3")]
    today = brussels_date(now)
    issues: list[Issue] = []
    sequences: set[Any] = set()
    for i, raw in enumerate(entries):
        entry = obj(raw) or {}
        path = f"Claim.item[{i}]"
        sequence = entry.get("sequence")
        if sequence in sequences:
            message = "item sequences must be unique"
            issues.append(Issue("business-rule", f"{path}.sequence", message, "AT-3"))
        sequences.add(sequence)
        issues.extend(_nomenclature(entry, path)[1])
        issues.extend(_serviced(entry, path, today)[1])
        count, found = _count(entry, path)
        issues.extend(found)
        unit, found = money(entry.get("unitPrice"), f"{path}.unitPrice", "fee per service")
        issues.extend(found)
        net, found = money(entry.get("net"), f"{path}.net", "fee of the line")
        issues.extend(found)
        if (
            count is not None
            and unit is not None
            and net is not None
            and not _same(unit * count, net)
        ):
            message = "net must equal unitPrice times the count"
            issues.append(Issue("invariant", f"{path}.net.value", message, "AT-3"))
    return issues


def rule_total(body: Mapping[str, Any]) -> list[Issue]:
    """AT-3: the total fee 1..1 (EUR charged), the sum of the lines' ``net``."""
    total, issues = money(body.get("total"), "Claim.total", "total fee")
    if total is None:
        return issues
    nets = [money((obj(e) or {}).get("net"), "", "")[0] for e in items(body.get("item"))]
    known = [n for n in nets if n is not None]
    if known and len(known) == len(nets) and not _same(sum(known, Decimal(0)), total):
        message = "total must equal the sum of the items' net"
        return [Issue("invariant", "Claim.total.value", message, "AT-3")]
    return []


def services(body: Mapping[str, Any]) -> list[Service]:
    """The services of a claim that passed ``rule_items`` (every element is there and valid)."""
    found = []
    for raw in items(body.get("item")):
        entry = obj(raw) or {}
        code, _ = _nomenclature(entry, "")
        quantity = obj(entry.get("quantity")) or {}
        serviced = text(entry.get("servicedDate"))
        if code is None or serviced is None:
            continue
        found.append(Service(date.fromisoformat(serviced), code, int(quantity.get("value", 1))))
    return found
