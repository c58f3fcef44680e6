"""The instants a prescription is searched and expired by, read from its body as stored.

``authoredOn`` is an instant; the validity dates are Brussels calendar days, inclusive (RX-10..RX-12):
valid from the first instant of its first day, expired from the first instant after its last day,
Brussels midnight on the daylight-saving days too (``describe.start_of_day``, ``end_of_day``).
The store indexes these instants as UTC (``gateway.storage.types.UtcDateTime``).

One place for the rule: the create (``service.search_columns``) and migration 0007, which
recomputes the columns of databases written before instants were stored as UTC, both call it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir_profiles._json import authored_on, obj, text
from fhir_profiles.dates import parse_fhir_day
from gateway.prescriptions.describe import end_of_day, start_of_day


@dataclass(frozen=True)
class Instants:
    authored_on: datetime | None
    valid_from: datetime | None  # the ``period_start`` column
    expires_at: datetime | None  # the ``period_end`` column: the first instant no longer valid


def instants_of(resource: Mapping[str, Any]) -> Instants:
    """The instants of a validated prescription (its validity end is always filled in by then)."""
    period = obj((obj(resource.get("dispenseRequest")) or {}).get("validityPeriod")) or {}
    raw_start, raw_end = text(period.get("start")), text(period.get("end"))
    first = None if raw_start is None else parse_fhir_day(raw_start)
    last = None if raw_end is None else parse_fhir_day(raw_end)
    return Instants(
        authored_on=authored_on(resource),
        valid_from=None if first is None else start_of_day(first),
        expires_at=None if last is None else end_of_day(last),
    )
