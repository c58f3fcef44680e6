"""The fund's tariff table: legal fee and reimbursement per NIHDI nomenclature code (domain ID-18).

The built-in table (``data/tariffs.json``) is illustrative [A]: plausible amounts, not the official
NIHDI tariffs. A beneficiary with preferential status (BIM/VT) gets a higher reimbursement, hence a
lower patient share.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Tariff:
    code: str
    label: str
    attestation_type: str
    fee: Decimal
    reimbursement_standard: Decimal
    reimbursement_preferential: Decimal

    def reimbursement(self, preferential: bool) -> Decimal:
        return self.reimbursement_preferential if preferential else self.reimbursement_standard

    def patient_share(self, preferential: bool) -> Decimal:
        return self.fee - self.reimbursement(preferential)


class TariffTable(Mapping[str, Tariff]):
    """Tariffs by nomenclature code."""

    def __init__(self, tariffs: list[Tariff]) -> None:
        self._by_code = {tariff.code: tariff for tariff in tariffs}

    def __getitem__(self, code: str) -> Tariff:
        return self._by_code[code]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_code)

    def __len__(self) -> int:
        return len(self._by_code)


def load_tariffs(path: Path | None = None) -> TariffTable:
    """The table in ``path`` (same JSON shape as the built-in file), or the built-in one."""
    if path is None:
        text = resources.files("mutualities").joinpath("data/tariffs.json").read_text("utf-8")
    else:
        text = path.read_text("utf-8")
    rows = json.loads(text)["tariffs"]
    return TariffTable([_tariff(row) for row in rows])


def _tariff(row: dict[str, str]) -> Tariff:
    tariff = Tariff(
        code=row["code"],
        label=row["label"],
        attestation_type=row["attestation_type"],
        fee=_amount(row["fee"]),
        reimbursement_standard=_amount(row["reimbursement_standard"]),
        reimbursement_preferential=_amount(row["reimbursement_preferential"]),
    )
    if not (len(tariff.code) == 6 and tariff.code.isdigit()):
        raise ValueError(f"nomenclature code must be 6 digits: {tariff.code!r}")
    if (
        not Decimal(0)
        <= tariff.reimbursement_standard
        <= tariff.reimbursement_preferential
        <= tariff.fee
    ):
        raise ValueError(f"tariff {tariff.code}: need 0 <= standard <= preferential <= fee")
    return tariff


def _amount(text: str) -> Decimal:
    return Decimal(text).quantize(CENT)
