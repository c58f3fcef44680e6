"""Parsing FHIR search parameter values (FHIR R4 search.html): tokens, dates with prefixes, paging.

Unknown parameters are refused with 400 (as HAPI does by default) rather than ignored: a pharmacy
that misspells ``status`` must not silently get every prescription.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import Final, TypeVar

from starlette.datastructures import QueryParams

from fhir_profiles import systems
from fhir_profiles.dates import BRUSSELS
from fhir_profiles.event_time import FIRST_YEAR, LAST_YEAR, RANGE_TEXT
from fhir_profiles.identifiers import is_valid_ssin, normalise_ssin
from fhir_profiles.ids import FHIR_ID
from gateway.errors import BadRequest
from gateway.fhir import handling, subsetting
from gateway.storage.store import NEWEST_FIRST, Criteria, Cursor, Paging, Range, Sort

# How every date parameter reads its values (CapabilityStatement documentation).
DATE_DOCUMENTATION: Final = (
    "prefixes eq (default), ne, gt, lt, ge, le, sa, eb; repeat to AND; compared as instants "
    "whatever the zone offset; a value without a zone, or a date, is Europe/Brussels time"
)
# Parameters every search accepts besides its own (FHIR R4 search.html#all, http.html#parameters).
COMMON = frozenset(
    {
        "_count",
        "_cursor",
        "_format",
        "_pretty",
        "_summary",
        "_elements",
        "_sort",
        "_total",
        "_id",
        "_lastUpdated",
    }
)
# ``_sort`` keys every type offers, besides its own (``paging(sorts=...)``).
COMMON_SORTS: Final = {"_lastUpdated": "last_updated"}
_TOTALS: Final = ("none", "estimate", "accurate")

# FHIR R4 search 3.1.1.5.7-8: a prefix, then a date to the year, month, day, minute, second or
# fraction of a second (at most microseconds, what an instant holds), with or without a zone.
_DATE: Final = re.compile(
    r"(?P<prefix>[a-z]{2})?"
    r"(?P<value>(?P<year>\d{4})(-\d{2}(-\d{2}"
    r"(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?)?)?)?)"
)
_CLOCK: Final = re.compile(r"\d{2}:\d{2}(?P<seconds>:\d{2}(\.(?P<fraction>\d+))?)?")
_MAX_OFFSET: Final = timedelta(hours=14)

_T = TypeVar("_T")


def check_known(params: QueryParams, known: Iterable[str]) -> None:
    """400 for a parameter neither the type nor every search supports; under ``Prefer:
    handling=lenient``, noted and ignored instead (``gateway.fhir.handling``)."""
    allowed = COMMON | set(known)
    for name in params:
        if name not in allowed:
            handling.unsupported(
                name,
                f"unknown or unsupported search parameter {name[:40]!r}; supported: "
                + ", ".join(sorted(set(known))),
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


def optional(params: QueryParams, name: str, parse: Callable[[str, str], _T]) -> _T | None:
    """A parameter given at most once, parsed by ``parse(value, name)``; None when absent."""
    value = single(params, name)
    return None if value is None else parse(value, name)


def codes(params: QueryParams, name: str) -> list[str]:
    """Every code given for a token parameter, comma-separated or in repeats, empty ones dropped
    (the searches that use it take their union: ``status=active,completed``)."""
    return [v for raw in params.getlist(name) for v in raw.split(",") if v]


def patient_param(value: str, name: str) -> str:
    """``patient:identifier`` (or AuditEvent ``patient``): an SSIN, with or without its system."""
    system, code = token(value, name)
    if system is not None and systems.normalise_system(system) != systems.SSIN:
        raise BadRequest(f"{name}: only the SSIN system is searchable", expression=name)
    if not is_valid_ssin(code):
        raise BadRequest(f"{name}: not a valid SSIN", expression=name)
    return normalise_ssin(code)


def _precision(text: str) -> timedelta:
    """How long the moment ``text`` (``...Thh:mm[:ss[.f]]...``) names: a minute, a second, or the
    fraction of a second its digits give."""
    clock = _CLOCK.match(text.partition("T")[2])
    assert clock is not None  # the shape was checked by _DATE
    if clock["fraction"]:
        return timedelta(microseconds=10 ** (6 - len(clock["fraction"])))
    return timedelta(seconds=1) if clock["seconds"] else timedelta(minutes=1)


def _range_of(text: str, name: str) -> Range:
    """The instant range a FHIR date value denotes (FHIR R4 search 3.1.1.5.8: its precision). A
    value without a zone is Brussels time; a date is Brussels calendar days (23 or 25 hours long
    on the daylight-saving days)."""
    try:
        if "T" in text:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            offset = moment.utcoffset()
            if offset is None:
                moment = moment.replace(tzinfo=BRUSSELS)
            elif abs(offset) > _MAX_OFFSET:  # FHIR zones run from -14:00 to +14:00
                raise ValueError("zone offset beyond 14 hours")
            return Range(moment, moment + _precision(text))
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


def _with_prefix(prefix: str, span: Range, name: str) -> Range:
    """FHIR R4 search 3.1.1.5.7 for a stored instant ``t`` and the value's range [low, high)."""
    if prefix == "eq":
        return span
    if prefix == "ne":
        return replace(span, outside=True)
    if prefix in ("gt", "sa"):  # after the value's range (for an instant, sa is gt)
        return Range(low=span.high)
    if prefix in ("lt", "eb"):  # before it (for an instant, eb is lt)
        return Range(high=span.low)
    if prefix == "ge":
        return Range(low=span.low)
    if prefix == "le":
        return Range(high=span.high)
    raise BadRequest(f"{name}: prefix {prefix!r} is not supported", expression=name)


def date_ranges(values: list[str], name: str) -> tuple[Range, ...]:
    """Each value (``ge2024-01-01``, ``le2024-12``, ``ne2024-05-03T10:00:00+02:00``) becomes one
    range to AND. Every instant is aware, so the store compares instants (``UtcDateTime``)."""
    ranges = []
    for value in values:
        # A "+" typed by hand in a query string arrives as a space (form encoding); in a date it
        # can only be the sign of a zone offset.
        match = _DATE.fullmatch(value.replace(" ", "+"))
        if match is None:
            raise BadRequest(
                f"{name}: expected [eq|ne|gt|lt|ge|le|sa|eb]YYYY[-MM[-DD[Thh:mm[:ss[.ffffff]]"
                "[Z|+hh:mm|-hh:mm]]]]",
                expression=name,
            )
        if not FIRST_YEAR <= int(match["year"]) <= LAST_YEAR:
            # What no event can carry (fhir_profiles.event_time); years 0001 and 9999 could not
            # even be placed in UTC.
            raise BadRequest(f"{name}: a date {RANGE_TEXT}", expression=name)
        span = _range_of(match["value"], name)
        ranges.append(_with_prefix(match["prefix"] or "eq", span, name))
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


def sort_of(params: QueryParams, sorts: Mapping[str, str]) -> Sort:
    """``_sort`` (FHIR R4 search.html#sort): one key this type offers (``sorts``: the FHIR
    name -> the store's key), ``-`` for descending. Without it: newest record first."""
    raw = single(params, "_sort")
    if raw is None:
        return NEWEST_FIRST
    offered = {**COMMON_SORTS, **sorts}
    keys = [k for k in raw.split(",") if k]
    name = keys[0].removeprefix("-") if len(keys) == 1 else None
    if name not in offered:
        raise BadRequest(
            "_sort takes one of " + ", ".join(sorted(offered)) + " (with - for descending)",
            expression="_sort",
        )
    return Sort(offered[name], descending=keys[0].startswith("-"))


def paging(
    params: QueryParams, default: int, maximum: int, sorts: Mapping[str, str] | None = None
) -> Paging:
    """``_count``, ``_sort``, ``_total`` and the cursor; ``_summary=count`` asks for the total
    only (FHIR R4 search.html#summary)."""
    total = single(params, "_total")
    if total is not None and total not in _TOTALS:
        raise BadRequest("_total is none, estimate or accurate", expression="_total")
    count_only = subsetting.subset_of(params).count_only
    return Paging(
        count=0 if count_only else page_size(params, default, maximum),
        cursor=cursor(params),
        sort=sort_of(params, sorts or {}),
        with_total=count_only or total != "none",
    )


def narrow(criteria: Criteria, params: QueryParams) -> Criteria:
    """``criteria`` and the parameters every type takes: ``_id`` (any of a comma list) and
    ``_lastUpdated`` (date ranges, ANDed)."""
    ids = codes(params, "_id")
    if any(not FHIR_ID.fullmatch(i) for i in ids):
        raise BadRequest("_id: a FHIR id", expression="_id")
    return replace(
        criteria,
        logical_ids=tuple(ids),
        last_updated=date_ranges(params.getlist("_lastUpdated"), "_lastUpdated"),
    )


# The CapabilityStatement entry of ``patient:identifier`` (prescriptions, dispenses).
PATIENT_IDENTIFIER_PARAMETER: Final[dict[str, str]] = {
    "name": "patient",
    "definition": "http://hl7.org/fhir/SearchParameter/clinical-patient",
    "type": "reference",
    "documentation": "with the :identifier modifier only: patient:identifier=<ssin-system>|<SSIN>",
}
