"""Searches by patient: ``search_filter`` (for SQL) agrees with ``decide`` on every record."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from consent import (
    OPEN_STATES,
    AccessPath,
    AccessRequest,
    Action,
    Actor,
    ByRelationship,
    ByRid,
    Decision,
    PatientFacts,
    PharmacyVisibility,
    PrescriberVisibility,
    PrescriptionState,
    Reason,
    RelationshipKind,
    Resource,
    ResourceKind,
    Role,
    SearchFilter,
    decide,
    decide_each,
    filter_visible,
    search_filter,
)
from tests.consent.factories import (
    AUTHOR,
    OTHER_PHARMACY,
    OTHER_SSIN,
    PHARMACY,
    PRESCRIBER,
    RID,
    admin,
    author,
    facts,
    fund,
    patient,
    pharmacist,
    prescriber,
    prescription,
    presence,
    relationship,
    request,
    visibility,
)

R = Reason

VISIBILITIES = [
    visibility(pharmacies=pharmacies, pharmacy=pharmacy, prescribers=prescribers)
    for pharmacies, pharmacy, prescribers in itertools.product(
        PharmacyVisibility, [None, PHARMACY, OTHER_PHARMACY], PrescriberVisibility
    )
]
RECORDS = [
    prescription(id=f"rx-{n}", author_nihdi=writer, state=state, visibility=shown, dispensed_by=by)
    for n, (writer, state, shown, by) in enumerate(
        itertools.product([AUTHOR, PRESCRIBER], PrescriptionState, VISIBILITIES, [None, PHARMACY])
    )
]
ACTORS = [author(), prescriber(), pharmacist(), pharmacist(OTHER_PHARMACY), patient()]
ACTORS += [patient(OTHER_SSIN), admin(), fund(), pharmacist(None)]
FACTS = [
    facts(),
    facts(consent=False),
    facts(related=(PRESCRIBER, PHARMACY)),
    facts(related=(PRESCRIBER, PHARMACY), excluded=(PRESCRIBER, PHARMACY)),
    facts(consent=False, related=(AUTHOR, PRESCRIBER, PHARMACY)),
    facts(related=(AUTHOR,), excluded=(AUTHOR,)),
    # RX-14: the caller shares a GMF practice with the other prescriber; the caller holds the
    # patient's GMF.
    facts(related=(AUTHOR, PRESCRIBER), gmf_colleagues=frozenset({AUTHOR[:8], PRESCRIBER[:8]})),
    facts(
        relationships=(relationship(PRESCRIBER, kind=RelationshipKind.GMF), relationship(AUTHOR)),
    ),
]
PATHS: list[AccessPath] = [ByRelationship(), presence()]


def _search(actor: Actor, path: AccessPath) -> AccessRequest:
    return replace(request(actor, ResourceKind.PRESCRIPTION, Action.SEARCH), path=path)


@pytest.mark.parametrize("known", FACTS, ids=lambda f: f"facts-{FACTS.index(f)}")
def test_architecture_5_filter_agrees_with_decide_on_every_record(known: PatientFacts) -> None:
    for actor, path in itertools.product(ACTORS, PATHS):
        search = _search(actor, path)
        plan = search_filter(search, known)
        assert plan.decision == decide(search, known)
        for record in RECORDS:
            item = decide(replace(search, target=record), known)
            assert plan.matches(record) == item.permit, (actor, path, record, item, plan)
            # RX-14: told of exactly the records refused for the patient's prescriber choice
            told = plan.hides(record)
            assert told == (item.reason is R.HIDDEN_BY_PATIENT and actor.role is Role.PRESCRIBER)


def test_RX_13_hidden_prescriptions_never_appear_in_a_pharmacy_search() -> None:
    shown = prescription(id="shown")
    mine = prescription(
        id="mine", visibility=visibility(pharmacies=PharmacyVisibility.ONE, pharmacy=PHARMACY)
    )
    elsewhere = prescription(
        id="elsewhere",
        visibility=visibility(pharmacies=PharmacyVisibility.ONE, pharmacy=OTHER_PHARMACY),
    )
    hidden = prescription(id="hidden", visibility=visibility(pharmacies=PharmacyVisibility.NONE))
    delivered = prescription(id="delivered", state=PrescriptionState.DELIVERED)
    search = _search(pharmacist(), presence())
    found = filter_visible(search, facts(), [shown, hidden, mine, elsewhere, delivered])
    assert [record.id for record in found] == ["shown", "mine"]


def test_RX_13_pharmacy_filter_for_sql() -> None:
    plan = search_filter(_search(pharmacist(), presence()), facts())
    assert plan == SearchFilter(
        decision=Decision(True, R.PERMIT_PRESENCE),
        others=True,
        states=OPEN_STATES,
        pharmacy_nihdi=PHARMACY,
    )


def test_RX_9_prescriber_filter_for_sql() -> None:
    plan = search_filter(_search(prescriber(), ByRelationship()), facts(related=(PRESCRIBER,)))
    assert plan == SearchFilter(
        decision=Decision(True, R.PERMIT_RELATIONSHIP),
        author_nihdi=PRESCRIBER,
        others=True,
        states=OPEN_STATES,
        prescribers_open=True,
        tells_hidden=True,
    )


def test_RX_9_prescriber_without_consent_finds_own_prescriptions_only() -> None:
    plan = search_filter(_search(author(), ByRelationship()), facts(consent=False))
    assert plan == SearchFilter(decision=Decision(True, R.PERMIT_AUTHOR), author_nihdi=AUTHOR)
    theirs = prescription(id="theirs", author_nihdi=PRESCRIBER)
    revoked = prescription(id="mine", state=PrescriptionState.REVOKED)
    found = filter_visible(
        _search(author(), ByRelationship()), facts(consent=False), [theirs, revoked]
    )
    assert [record.id for record in found] == ["mine"]


def test_PO_4_patient_finds_everything_about_themself() -> None:
    plan = search_filter(_search(patient(), ByRelationship()), facts(consent=False))
    assert plan == SearchFilter(decision=Decision(True, R.PERMIT_PATIENT_SELF), everything=True)


@pytest.mark.parametrize(
    ("actor", "known", "reason"),
    [
        (pharmacist(), facts(consent=False, excluded=(PHARMACY,)), R.EXCLUDED),
        (patient(OTHER_SSIN), facts(), R.NOT_OWN_DATA),
        (fund(), facts(), R.WRONG_ROLE),
        (admin(), facts(), R.WRONG_ROLE),
    ],
)
def test_CO_12_denied_search_returns_nothing(
    actor: Actor, known: PatientFacts, reason: Reason
) -> None:
    plan = search_filter(_search(actor, presence()), known)
    assert plan == SearchFilter(decision=Decision(False, reason))
    assert not any(plan.matches(record) for record in RECORDS)


@pytest.mark.parametrize(
    "req",
    [
        _search(pharmacist(), ByRid(RID)),  # a RID lookup is decided per record
        request(pharmacist(), ResourceKind.DISPENSE, Action.SEARCH),  # prescriptions only
        request(pharmacist(), prescription(), Action.READ),
        replace(_search(pharmacist(), presence()), now=None),  # type: ignore[arg-type]
    ],
    ids=["by-rid", "other-kind", "not-a-search", "no-now"],
)
def test_search_filter_fails_closed(req: AccessRequest) -> None:
    plan = search_filter(req, facts())
    assert plan == SearchFilter(decision=Decision(False, R.ERROR))


def test_decide_each_keeps_order_and_reasons() -> None:
    records = [
        prescription(id="a"),
        prescription(id="b", visibility=visibility(pharmacies=PharmacyVisibility.NONE)),
        prescription(id="c", state=PrescriptionState.EXPIRED),
    ]
    decided = decide_each(_search(pharmacist(), presence()), facts(), records)
    assert [(record.id, decision) for record, decision in decided] == [
        ("a", Decision(True, R.PERMIT_PRESENCE)),
        ("b", Decision(False, R.HIDDEN_BY_PATIENT)),
        ("c", Decision(False, R.NOT_OPEN)),
    ]


def test_RX_17_rid_lookup_is_filtered_per_record() -> None:
    hidden = prescription(visibility=visibility(pharmacies=PharmacyVisibility.NONE))
    lookup = request(pharmacist(), ResourceKind.PRESCRIPTION, Action.READ, path=ByRid(RID))
    assert filter_visible(lookup, facts(consent=False), [hidden]) == [hidden]
    other: Resource = prescription(rid="BEP999999999")
    assert decide_each(lookup, facts(), [other]) == [(other, Decision(False, R.ERROR))]
