"""The checks a fund makes before it acknowledges an attestation (domain AT-1, AT-2, AT-5, AT-7).

``check`` is a pure function over values: the caller loads the member and the services already
attested, then turns the faults into a rejection. It reports every fault, not only the first.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from datetime import date

from mutualities.claims import ClaimItem, ClaimRequest
from mutualities.errors import ErrorCode, Fault
from mutualities.members import Member
from mutualities.tariffs import Tariff

Service = tuple[str, str, date, str, int]
"""(provider NIHDI, patient SSIN, date, nomenclature code, count): what makes a service a duplicate."""


def service_key(claim: ClaimRequest, item: ClaimItem) -> Service:
    return (claim.provider_nihdi, claim.patient_ssin, item.serviced, item.code, item.count)


def check(
    claim: ClaimRequest,
    *,
    fund: str,
    member: Member | None,
    tariffs: Mapping[str, Tariff],
    today: date,
    attested: Set[Service],
) -> list[Fault]:
    """Why ``fund`` refuses ``claim``; empty when it acknowledges it.

    ``member`` is the patient's membership of ``fund`` (None if not a member), ``today`` the
    Europe/Brussels date, ``attested`` the services already acknowledged and not cancelled.
    """
    faults: list[Fault] = []
    if claim.insurer != fund:
        faults.append(Fault(ErrorCode.WRONG_INSURER, "Claim.insurer.identifier.value"))
    if member is None:
        faults.append(Fault(ErrorCode.NOT_A_MEMBER, "Claim.patient.identifier.value"))
    seen: set[Service] = set()
    for item in claim.items:
        path = f"Claim.item[{item.index}]"
        if item.code not in tariffs:
            code_path = f"{path}.productOrService.coding[{item.coding_index}].code"
            faults.append(Fault(ErrorCode.UNKNOWN_NOMENCLATURE_CODE, code_path, item.sequence))
        if item.serviced > today:
            faults.append(Fault(ErrorCode.FUTURE_DATE, f"{path}.servicedDate", item.sequence))
        key = service_key(claim, item)
        # The same service twice, in this claim or in an earlier one (AT-2: never attested twice).
        if key in attested or key in seen:
            faults.append(Fault(ErrorCode.DUPLICATE_ATTESTATION, path, item.sequence))
        seen.add(key)
    return faults
