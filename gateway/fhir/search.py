"""Parsing FHIR search parameter values (FHIR R4 search.html): tokens, dates with prefixes, paging.

Unknown parameters are refused with 400 (as HAPI does by default) rather than ignored: a pharmacy
that misspells ``status`` must not silently get every prescription.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from starlette.datastructures import QueryParams

from gateway.errors import BadRequest
from gateway.storage.store import Cursor, Range

BRUSSELS = ZoneInfo("Europe/Brussels")
# Parameters every search accepts besides its own.
COMMON = frozenset({"_count", "_cursor", "_format"})

_DATE = re.compile(
    r"^(?P<prefix>eq|ne|gt|lt|ge|le|sa|eb|ap)?"
    r"(?P<value>\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?)$"
)


def check_known(params: QueryParams, known: Iterable[str]) -> None:
    allowed = COMMON | set(known)
    for name in params:
        if name not in allowed:
            raise BadRequest(
                f"unknown or unsupported search parameter {name[:40]!r}; supported: "
                + ", ".join(sorted(set(known))),
                expression=name[:40],
            )


def single(params: QueryParams, name: str) -> str | None:
    values = params.getlist(name)
    if len(values) > 1:
        raise BadRequest(f"{name} may be given once", expression=name)
    return values[0] if values else None


def token(value: str, name: str) -> tuple[str | None, str]:
    """``system|code`` -> (system, code); ``code`` -> (None, code)."""
    if "|" in value:
        system, _, code = value.partition("|")
        if not code:
            raise BadRequest(f"{name} needs a value after '|'", expression=name)
        return (system or None), code
    if not value:
        raise BadRequest(f"{name} needs a value", expression=name)
    return None, value


def _range_of(text: str, name: str) -> Range:
    """The instant range a FHIR date value denotes (its precision), in Brussels local time."""
    try:
        if "T" in text:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=BRUSSELS)
            step = timedelta(seconds=1) if text.count(":") >= 2 else timedelta(minutes=1)
            return Range(moment, moment + step)
        parts = [int(p) for p in text.split("-")]
        if len(parts) == 1:
            start, end = date(parts[0], 1, 1), date(parts[0] + 1, 1, 1)
        elif len(parts) == 2:
            start = date(parts[0], parts[1], 1)
            end = date(parts[0] + parts[1] // 12, parts[1] % 12 + 1, 1)
        else:
            start = date(parts[0], parts[1], parts[2])
            end = start + timedelta(days=1)
    except ValueError as exc:
        raise BadRequest(f"{name}: not a valid date", expression=name) from exc
    return Range(datetime.combine(start, time(), BRUSSELS), datetime.combine(end, time(), BRUSSELS))


def date_ranges(values: list[str], name: str) -> tuple[Range, ...]:
    """Each value (``ge2024-01-01``, ``le2024-12``, ``2024-05-03``) becomes one range to AND."""
    ranges = []
    for value in values:
        match = _DATE.match(value)
        if match is None:
            raise BadRequest(
                f"{name}: expected [eq|ge|le|gt|lt]YYYY[-MM[-DD[Thh:mm[:ss][zone]]]]",
                expression=name,
            )
        prefix = match["prefix"] or "eq"
        span = _range_of(match["value"], name)
        if prefix == "eq":
            ranges.append(span)
        elif prefix == "ge":
            ranges.append(Range(low=span.low))
        elif prefix == "gt":
            ranges.append(Range(low=span.high))
        elif prefix == "le":
            ranges.append(Range(high=span.high))
        elif prefix == "lt":
            ranges.append(Range(high=span.low))
        else:
            raise BadRequest(f"{name}: prefix {prefix!r} is not supported", expression=name)
    return tuple(ranges)


def page_size(params: QueryParams, default: int, maximum: int) -> int:
    raw = single(params, "_count")
    if raw is None:
        return default
    # ASCII digits only: "²" is a digit to str.isdigit() but not to int().
    if not (raw.isascii() and raw.isdigit()):
        raise BadRequest("_count must be a non-negative integer", expression="_count")
    # int() refuses more than 4300 digits; any count that long is above the maximum anyway.
    return maximum if len(raw) > 9 else min(int(raw), maximum)


def cursor(params: QueryParams) -> Cursor | None:
    raw = single(params, "_cursor")
    return None if raw is None else Cursor.decode(raw)


# The CapabilityStatement entry of ``patient:identifier`` (prescriptions, dispenses).
PATIENT_IDENTIFIER_PARAMETER: Final[dict[str, str]] = {
    "name": "patient",
    "definition": "http://hl7.org/fhir/SearchParameter/clinical-patient",
    "type": "reference",
    "documentation": "with the :identifier modifier only: patient:identifier=<ssin-system>|<SSIN>",
}
