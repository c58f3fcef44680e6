"""The pure parts: reading a Claim, the checks, pricing, numbering (no I/O)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from mutualities import systems
from mutualities.claims import ClaimRequest, parse_cancel, parse_claim
from mutualities.errors import ErrorCode, Fault
from mutualities.members import Member
from mutualities.records import attestation_number
from mutualities.rules import check, service_key
from mutualities.settlement import price_lines
from mutualities.tariffs import load_tariffs
from tests.mutualities.factories import GP, JAN, cancel, claim, item

TARIFFS = load_tariffs()
MEMBER = Member(JAN, "100", preferential=False)
TODAY = date(2025, 3, 14)


def parsed(**overrides: object) -> ClaimRequest:
    result = parse_claim(claim(**overrides))  # type: ignore[arg-type]
    assert isinstance(result, ClaimRequest), result
    return result


def test_reads_what_the_fund_needs() -> None:
    request = parsed(items=[item("101032"), item("560011", serviced="2025-03-10", count=3)])
    assert (request.patient_ssin, request.provider_nihdi, request.insurer) == (JAN, GP, "100")
    assert [(i.sequence, i.code, i.serviced, i.count) for i in request.items] == [
        (1, "101032", TODAY, 1),
        (2, "560011", date(2025, 3, 10), 3),
    ]


def test_accepts_legacy_ssin_and_nihdi_systems() -> None:
    body = claim()
    body["patient"]["identifier"]["system"] = (
        "https://www.ehealth.fgov.be/standards/fhir/NamingSystem/ssin"
    )
    body["provider"]["identifier"]["system"] = systems.NIHDI
    assert isinstance(parse_claim(body), ClaimRequest)


@pytest.mark.parametrize(
    ("mutate", "expression"),
    [
        (lambda b: b.pop("patient"), "Claim.patient"),
        (
            lambda b: b["patient"]["identifier"].update(value="123"),
            "Claim.patient.identifier.value",
        ),
        (
            lambda b: b["patient"]["identifier"].update(system="urn:x"),
            "Claim.patient.identifier.system",
        ),
        (lambda b: b["insurer"].pop("identifier"), "Claim.insurer.identifier"),
        (lambda b: b.update(item=[]), "Claim.item"),
        (lambda b: b["item"][0].pop("productOrService"), "Claim.item[0].productOrService"),
        (
            lambda b: b["item"][0]["productOrService"]["coding"][0].update(system="urn:cnk"),
            "Claim.item[0].productOrService.coding",
        ),
        (lambda b: b["item"][0].update(servicedDate="2025-02-30"), "Claim.item[0].servicedDate"),
        (lambda b: b["item"][0].update(quantity={"value": 1.5}), "Claim.item[0].quantity.value"),
        (lambda b: b["item"][0].update(quantity={"value": True}), "Claim.item[0].quantity.value"),
        (lambda b: b["item"][0].update(sequence=0), "Claim.item[0].sequence"),
    ],
)
def test_malformed_elements_are_located(mutate: object, expression: str) -> None:
    body = claim()
    mutate(body)  # type: ignore[operator]
    assert parse_claim(body) == [Fault(ErrorCode.INVALID_CLAIM, expression, _item_of(expression))]


def _item_of(expression: str) -> int | None:
    return 1 if expression.startswith("Claim.item[0].") and "sequence" not in expression else None


def test_a_count_of_two_point_zero_is_two() -> None:
    body = claim(items=[item(count=2)])
    body["item"][0]["quantity"]["value"] = 2.0
    result = parse_claim(body)
    assert isinstance(result, ClaimRequest)
    assert result.items[0].count == 2


def test_check_accepts_a_good_claim() -> None:
    assert (
        check(parsed(), fund="100", member=MEMBER, tariffs=TARIFFS, today=TODAY, attested=set())
        == []
    )


def test_check_reports_every_fault_at_once() -> None:
    request = parsed(insurer="300", items=[item("999999", serviced="2025-03-15")])
    faults = check(request, fund="100", member=None, tariffs=TARIFFS, today=TODAY, attested=set())
    assert [fault.code for fault in faults] == [
        ErrorCode.WRONG_INSURER,
        ErrorCode.NOT_A_MEMBER,
        ErrorCode.UNKNOWN_NOMENCLATURE_CODE,
        ErrorCode.FUTURE_DATE,
    ]


def test_check_refuses_an_attested_service() -> None:
    request = parsed()
    attested = {service_key(request, request.items[0])}
    faults = check(
        request, fund="100", member=MEMBER, tariffs=TARIFFS, today=TODAY, attested=attested
    )
    assert faults == [Fault(ErrorCode.DUPLICATE_ATTESTATION, "Claim.item[0]", 1)]


def test_the_fingerprint_ignores_what_a_retry_may_change() -> None:
    assert (
        parsed().fingerprint() == parsed(created="2025-03-14T11:00:00+01:00", id="x").fingerprint()
    )
    assert parsed().fingerprint() != parsed(items=[item(count=2)]).fingerprint()


def test_pricing_uses_the_status_and_the_count() -> None:
    request = parsed(items=[item("101032", count=2)])
    [standard] = price_lines(request, TARIFFS, preferential=False)
    [preferential] = price_lines(request, TARIFFS, preferential=True)
    assert standard.legal_fee == preferential.legal_fee == Decimal("60.06")
    assert (standard.reimbursed, standard.patient_share) == (Decimal("52.06"), Decimal("8.00"))
    assert (preferential.reimbursed, preferential.patient_share) == (
        Decimal("58.06"),
        Decimal("2.00"),
    )


def test_cancel_reads_number_and_reason() -> None:
    result = parse_cancel(cancel("100-1-250314-0000001-86", "E"))
    assert not isinstance(result, list)
    assert (result.attestation, result.reason) == ("100-1-250314-0000001-86", "E")


def test_attestation_numbers_have_check_digits() -> None:
    number = attestation_number("300", date(2017, 1, 27), 5)
    assert number.startswith("300-1-170127-0000005-")
    digits = number.replace("-", "")
    assert (int(digits[:-2]) + int(digits[-2:])) % 97 == 0
