"""Legal durations of therapeutic relationships (domain CO-6) and the month arithmetic they need."""

from __future__ import annotations

import calendar
from datetime import datetime
from typing import Final

from consent.model import RelationshipKind

# CO-6, in calendar months from the start (the eID read, referral, GMF opening, admission, contact).
# A pharmacy's eID read at delivery is also 15 months. A GMF renewal is a new relationship (CO-7).
RELATIONSHIP_MONTHS: Final[dict[RelationshipKind, int]] = {
    RelationshipKind.EID_READ: 15,
    RelationshipKind.REFERRAL: 3,
    RelationshipKind.GMF: 12,
    RelationshipKind.HOSPITAL: 3,
    RelationshipKind.EMERGENCY: 1,
}


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` moved by ``months`` calendar months, clamped to the end of a shorter month.

    The time of day and the time zone are kept: 2024-01-31 10:00 + 1 month = 2024-02-29 10:00.
    """
    years, month0 = divmod(moment.month - 1 + months, 12)
    year, month = moment.year + years, month0 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def relationship_end(kind: RelationshipKind | str, start: datetime) -> datetime:
    """The legal end of a relationship of ``kind`` starting at ``start`` (CO-6, CO-7: inclusive).

    Raises ``ValueError`` for an unknown kind: this is input validation, not an access decision.
    """
    return add_months(start, RELATIONSHIP_MONTHS[RelationshipKind(kind)])
