"""``consent.decide`` for a prescription the patient shows to the GMF (domain RX-14, issue 16 item 5):
the author, the GPs sharing a GMF practice with the author, the patient's GMF holder and the GPs of
his practice; each other physician under the network rules first (consent, exclusion,
relationship: CO-12), then the choice; everyone else is ``hidden-by-patient``. A search by patient
shows and hides the same (``SearchFilter``), and tells how many it hides."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from consent import (
    Action,
    Actor,
    ByRelationship,
    Decision,
    PatientFacts,
    PrescriberVisibility,
    PrescriptionState,
    Reason,
    Relationship,
    RelationshipKind,
    Resource,
    ResourceKind,
    SearchFilter,
    decide,
    search_filter,
)
from tests.consent.factories import (
    AUTHOR,
    NOW,
    PRESCRIBER,
    author,
    deny,
    facts,
    patient,
    permit,
    pharmacist,
    prescriber,
    prescription,
    relationship,
    request,
    visibility,
)
from tests.fixtures.nihdi import nihdi

R = Reason
GMF = visibility(prescribers=PrescriberVisibility.GMF)
HOLDER = nihdi("100123", "004")  # the GP holding the patient's GMF (a third physician)
STRANGER = nihdi("100456", "003")  # a physician in no practice of theirs


def person(number: str) -> str:
    return number[:8]  # ID-7


def shown(**overrides: Any) -> Resource:
    return prescription(visibility=GMF, **overrides)


def known(*, caller: str, colleagues: tuple[str, ...] = (), **overrides: Any) -> PatientFacts:
    """Consent, a relationship of ``caller`` with the patient, and ``colleagues`` (numbers) as the
    caller's GMF colleagues at ``NOW`` (himself included when he is a member)."""
    base = facts(related=(caller,))
    return replace(base, gmf_colleagues=frozenset(person(c) for c in colleagues), **overrides)


def holding(provider: str, **overrides: Any) -> Relationship:
    return relationship(provider, kind=RelationshipKind.GMF, **overrides)


def test_RX_14_a_GP_of_the_authors_practice_reads_it() -> None:
    decision = decide(
        request(prescriber(), shown()), known(caller=PRESCRIBER, colleagues=(PRESCRIBER, AUTHOR))
    )
    assert decision == permit(R.PERMIT_RELATIONSHIP)


def test_RX_14_a_physician_outside_the_practice_is_refused() -> None:
    decision = decide(request(prescriber(STRANGER), shown()), known(caller=STRANGER))
    assert decision == deny(R.HIDDEN_BY_PATIENT)
    # A practice of his own, without the author, changes nothing.
    other_practice = known(caller=STRANGER, colleagues=(STRANGER, PRESCRIBER))
    assert decide(request(prescriber(STRANGER), shown()), other_practice) == deny(
        R.HIDDEN_BY_PATIENT
    )


def test_ID_7_the_practice_holds_the_person_under_any_competence_code() -> None:
    author_as_specialist = person(AUTHOR) + "580"
    member = known(caller=PRESCRIBER, colleagues=(PRESCRIBER, author_as_specialist))
    assert decide(request(prescriber(), shown()), member).permit


def test_RX_14_the_patients_GMF_holder_and_his_colleagues_read_it() -> None:
    holder_facts = replace(facts(), relationships=(holding(HOLDER),), gmf_colleagues=frozenset())
    assert decide(request(prescriber(HOLDER), shown()), holder_facts) == permit(
        R.PERMIT_RELATIONSHIP
    )
    # A GP of the holder's practice, with his own relationship, though not the author's colleague.
    colleague = replace(
        facts(),
        relationships=(holding(HOLDER), relationship(STRANGER)),
        gmf_colleagues=frozenset({person(HOLDER), person(STRANGER)}),
    )
    assert decide(request(prescriber(STRANGER), shown()), colleague) == permit(
        R.PERMIT_RELATIONSHIP
    )


@pytest.mark.parametrize(
    "ended",
    [{"active": False}, {"end": NOW - timedelta(days=1)}],
    ids=["ended", "expired"],
)
def test_RX_14_a_GMF_that_is_no_longer_held_opens_nothing(ended: dict[str, object]) -> None:
    past = replace(
        facts(),
        relationships=(holding(HOLDER, **ended), relationship(STRANGER)),
        gmf_colleagues=frozenset({person(HOLDER), person(STRANGER)}),
    )
    assert decide(request(prescriber(STRANGER), shown()), past) == deny(R.HIDDEN_BY_PATIENT)


def test_RX_14_a_member_who_left_the_practice_is_refused() -> None:
    # The loader gives the colleagues at the time of the request: after the removal, none.
    assert decide(request(prescriber(), shown()), known(caller=PRESCRIBER)) == deny(
        R.HIDDEN_BY_PATIENT
    )


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"consents": ()}, R.NO_CONSENT),
        ({"relationships": ()}, R.NO_RELATIONSHIP),
    ],
    ids=["no-consent", "no-relationship"],
)
def test_CO_12_a_GMF_member_still_needs_consent_and_a_relationship(
    overrides: dict[str, object], reason: Reason
) -> None:
    member = known(caller=PRESCRIBER, colleagues=(PRESCRIBER, AUTHOR), **overrides)
    assert decide(request(prescriber(), shown()), member) == deny(reason)


def test_CO_10_an_excluded_GMF_member_is_refused() -> None:
    member = known(caller=PRESCRIBER, colleagues=(PRESCRIBER, AUTHOR))
    excluded = replace(member, exclusions=facts(excluded=(PRESCRIBER,)).exclusions)
    assert decide(request(prescriber(), shown()), excluded) == deny(R.EXCLUDED)


@pytest.mark.parametrize(
    "state", [PrescriptionState.DELIVERED, PrescriptionState.REVOKED, PrescriptionState.EXPIRED]
)
def test_RX_9_a_GMF_member_reads_open_ones_only(state: PrescriptionState) -> None:
    member = known(caller=PRESCRIBER, colleagues=(PRESCRIBER, AUTHOR))
    assert decide(request(prescriber(), shown(state=state)), member) == deny(R.NOT_OPEN)


def test_RX_14_the_author_reads_and_sets_it_the_patient_too() -> None:
    assert decide(request(author(), shown()), facts(consent=False)) == permit(R.PERMIT_AUTHOR)
    to_gmf = request(author(), prescription(), Action.SET_VISIBILITY, new_visibility=GMF)
    assert decide(to_gmf, facts()) == permit(R.PERMIT_AUTHOR)  # at the patient's request
    by_patient = request(patient(), prescription(), Action.SET_VISIBILITY, new_visibility=GMF)
    assert decide(by_patient, facts()) == permit(R.PERMIT_PATIENT_SELF)


def test_RX_13_the_GMF_choice_does_not_concern_pharmacies() -> None:
    # The counter's rules decide (RX-18), not the prescribers' flag.
    listed = decide(
        request(pharmacist(), shown(), Action.SEARCH),
        facts(consent=False, related=(pharmacist().nihdi or "",)),
    )
    assert listed == permit(R.PERMIT_RELATIONSHIP)


# --- searches by patient: shown, hidden, told -----------------------------------------------------


def _search(actor: Actor, known_facts: PatientFacts) -> SearchFilter:
    req = request(actor, ResourceKind.PRESCRIPTION, Action.SEARCH, path=ByRelationship())
    return search_filter(req, known_facts)


@pytest.mark.parametrize(
    ("caller", "known_facts", "visible"),
    [
        (PRESCRIBER, known(caller=PRESCRIBER, colleagues=(PRESCRIBER, AUTHOR)), True),
        (STRANGER, known(caller=STRANGER), False),
        (
            STRANGER,
            replace(
                known(caller=STRANGER, colleagues=(STRANGER, HOLDER)),
                relationships=(relationship(STRANGER), holding(HOLDER)),
            ),
            True,
        ),
    ],
    ids=["authors-practice", "outsider", "holders-practice"],
)
def test_RX_14_a_search_shows_what_a_read_shows_and_tells_the_rest(
    caller: str, known_facts: PatientFacts, visible: bool
) -> None:
    plan = _search(prescriber(caller), known_facts)
    assert plan.decision == Decision(True, R.PERMIT_RELATIONSHIP)
    record = shown()
    read = decide(request(prescriber(caller), record), known_facts)
    assert plan.matches(record) is visible is read.permit
    assert plan.hides(record) is not visible
    closed = prescription(visibility=visibility(prescribers=PrescriberVisibility.CLOSED))
    assert plan.hides(closed)
    assert not plan.hides(prescription())
    assert not plan.hides(shown(state=PrescriptionState.DELIVERED))


def test_RX_14_nobody_else_is_told_of_hidden_ones() -> None:
    closed = prescription(visibility=visibility(prescribers=PrescriberVisibility.CLOSED))
    no_consent = _search(prescriber(), known(caller=PRESCRIBER, consents=()))
    assert no_consent.decision == Decision(True, R.PERMIT_AUTHOR)
    assert not no_consent.hides(closed)
    for actor in (patient(), pharmacist()):
        plan = _search(actor, facts(related=(pharmacist().nihdi or "",)))
        assert not plan.hides(closed)
    own = _search(author(), known(caller=AUTHOR))
    assert not own.hides(closed)
