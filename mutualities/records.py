"""What a fund keeps about an attestation, and how it numbers them (domain AT-4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

BRUSSELS = ZoneInfo("Europe/Brussels")


def brussels_date(moment: datetime) -> date:
    """Dates in Belgian healthcare are Europe/Brussels calendar dates."""
    return moment.astimezone(BRUSSELS).date()


class Status(StrEnum):
    ACCEPTED = "accepted"  # acknowledged with a number, reimbursement not yet decided (AT-4)
    SETTLED = "settled"  # reimbursement paid to the patient (AT-1)
    CANCELLED = "cancelled"  # cancelled by the provider (AT-6); never settles afterwards


@dataclass(frozen=True)
class Line:
    """One acknowledged service with the amounts the fund fixed when it acknowledged it."""

    sequence: int
    code: str
    serviced: date
    count: int
    legal_fee: Decimal
    reimbursed: Decimal
    patient_share: Decimal

    def to_json(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "code": self.code,
            "serviced": self.serviced.isoformat(),
            "count": self.count,
            "legal_fee": str(self.legal_fee),
            "reimbursed": str(self.reimbursed),
            "patient_share": str(self.patient_share),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Line:
        return cls(
            sequence=int(data["sequence"]),
            code=str(data["code"]),
            serviced=date.fromisoformat(data["serviced"]),
            count=int(data["count"]),
            legal_fee=Decimal(data["legal_fee"]),
            reimbursed=Decimal(data["reimbursed"]),
            patient_share=Decimal(data["patient_share"]),
        )


@dataclass(frozen=True)
class Attestation:
    number: str
    idempotency_key: str
    fund: str
    patient_ssin: str
    provider_nihdi: str
    preferential: bool
    claim_type: dict[str, Any] | None
    sub_type: dict[str, Any] | None
    lines: tuple[Line, ...]
    status: Status
    accepted_at: datetime
    settle_due_at: datetime
    settled_at: datetime | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None

    @property
    def legal_fee(self) -> Decimal:
        return sum((line.legal_fee for line in self.lines), Decimal("0.00"))

    @property
    def reimbursed(self) -> Decimal:
        return sum((line.reimbursed for line in self.lines), Decimal("0.00"))

    @property
    def patient_share(self) -> Decimal:
        return sum((line.patient_share for line in self.lines), Decimal("0.00"))


def attestation_number(fund: str, day: date, sequence: int) -> str:
    """``300-1-170127-0000005-32``: fund, batch, YYMMDD, sequence, 2 check digits.

    [A] The layout imitates the number in hl7-be/eattestation ex12; the real check-digit rule is not
    published there, so ours is ``97 - (digits mod 97)``. Sequences are per fund, never reused.
    """
    body = f"{fund}1{day:%y%m%d}{sequence:07d}"
    check = 97 - int(body) % 97
    return f"{fund}-1-{day:%y%m%d}-{sequence:07d}-{check:02d}"
