"""The built-in member list and tariff table, and loading replacements."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import demo_data  # tests may look at the gateway; the mutualities package never does
from mutualities.members import load_members
from mutualities.tariffs import load_tariffs


def test_the_gateways_demo_patients_are_members_of_their_funds() -> None:
    members = load_members()
    for patient in demo_data.PATIENTS:
        assert members.lookup(patient.fund_code, patient.ssin) is not None, patient.name
    assert members.lookup("500", "01010100126").preferential  # type: ignore[union-attr]


def test_the_demo_manifests_membership_numbers_are_the_funds() -> None:
    members = load_members()
    for patient in demo_data.PATIENTS:
        assert patient.membership_number is not None, patient.name
        member = members.by_membership(patient.fund_code, patient.membership_number)
        assert member is not None, patient.name
        assert member.ssin == patient.ssin, patient.name
    # a number is the fund's own: another fund does not know it
    assert members.by_membership("300", demo_data.PATIENTS[0].membership_number or "") is None


def test_every_member_ssin_passes_its_check_digits() -> None:
    for member in load_members():
        base = int(member.ssin[:9])
        check = int(member.ssin[9:])
        assert check in (97 - base % 97, 97 - (2_000_000_000 + base) % 97), member.fund


def test_the_tariff_table_is_plausible() -> None:
    tariffs = load_tariffs()
    for code in ("101032", "101076", "103132", "102012", "560011", "371011"):
        assert code in tariffs
    for tariff in tariffs.values():
        assert tariff.patient_share(preferential=True) <= tariff.patient_share(preferential=False)
        assert tariff.fee > 0


def test_a_members_file_replaces_the_built_in_list(tmp_path: Path) -> None:
    csv_file = tmp_path / "members.csv"
    csv_file.write_text("ssin,fund,preferential\n85073003328,200,yes\n93051822361,300,\n")
    members = load_members(csv_file)
    assert len(members) == 2
    assert members.lookup("100", "85073003328") is None
    assert members.lookup("200", "85073003328").preferential  # type: ignore[union-attr]
    json_file = tmp_path / "members.json"
    json_file.write_text('{"members": [{"ssin": "85073003328", "fund": "100"}]}')
    assert load_members(json_file).lookup("100", "85073003328") is not None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("ssin,fund,preferential\n85073003328,100,maybe\n", "preferential"),
        ("ssin,fund\n85073003328,100\n85073003328,300\n", "twice"),
        (
            "ssin,fund,membership\n85073003328,100,7\n93051822361,100,7\n",
            "membership number given twice",
        ),
        ("ssin,fund,membership\n85073003328,100,M-7\n", "membership number must be"),
    ],
)
def test_a_bad_members_file_is_refused(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "members.csv"
    bad.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_members(bad)
