"""``consent.decide`` on dispenses (RX-7), claims (CO-9) and consent-family records (CO-2, CO-5)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from consent import (
    Action,
    Actor,
    Decision,
    PrescriptionState,
    Reason,
    ResourceKind,
    decide,
)
from tests.consent.factories import (
    AUTHOR,
    NOW,
    OTHER_PHARMACY,
    PHARMACY,
    PRESCRIBER,
    author,
    deny,
    facts,
    permit,
    pharmacist,
    prescriber,
    presence,
    record,
    request,
)

R = Reason
S = PrescriptionState


# --- dispenses, claims, consent records ---------------------------------------------------------


def test_RX_7_undo_only_by_the_dispensing_pharmacy() -> None:
    dispense = record(ResourceKind.DISPENSE, author_nihdi=PHARMACY)
    undo = request(pharmacist(), dispense, Action.UNDO_DISPENSE)
    assert decide(undo, facts(consent=False, excluded=(PHARMACY,))) == permit(R.PERMIT_DISPENSER)
    other = replace(undo, actor=pharmacist(OTHER_PHARMACY))
    assert decide(other, facts(related=(OTHER_PHARMACY,))) == deny(R.NOT_DISPENSER)


def test_dispenses_of_others_follow_the_network_rules() -> None:
    dispense = record(ResourceKind.DISPENSE, author_nihdi=OTHER_PHARMACY)
    assert decide(request(prescriber(), dispense), facts(related=(PRESCRIBER,))) == permit(
        R.PERMIT_RELATIONSHIP
    )
    assert decide(request(prescriber(), dispense), facts()) == deny(R.NO_RELATIONSHIP)
    assert decide(request(pharmacist(), dispense, path=presence()), facts()) == permit(
        R.PERMIT_PRESENCE
    )


def test_pharmacy_search_of_dispenses_shows_its_own_without_consent() -> None:
    search = request(pharmacist(), ResourceKind.DISPENSE, Action.SEARCH)
    assert decide(search, facts(consent=False)) == permit(R.PERMIT_DISPENSER)
    prescriber_search = request(prescriber(), ResourceKind.DISPENSE, Action.SEARCH)
    assert decide(prescriber_search, facts(consent=False)) == deny(R.NO_CONSENT)


@pytest.mark.parametrize("action", [Action.CREATE, Action.READ, Action.UPDATE, Action.SEARCH])
def test_CO_9_claims_need_no_consent_or_relationship(action: Action) -> None:
    claim = record(ResourceKind.CLAIM, author_nihdi=AUTHOR)
    assert decide(request(author(), claim, action), facts(consent=False)) == permit(R.PERMIT_AUTHOR)
    assert decide(request(prescriber(), claim, action), facts(related=(PRESCRIBER,))) == deny(
        R.NOT_AUTHOR
    )


def test_CO_9_claim_search_shows_own_claims() -> None:
    search = request(prescriber(), ResourceKind.CLAIM, Action.SEARCH)
    assert decide(search, facts(consent=False)) == permit(R.PERMIT_AUTHOR)


def test_claims_are_not_for_pharmacies() -> None:
    claim = record(ResourceKind.CLAIM, author_nihdi=PHARMACY)
    assert decide(request(pharmacist(), claim, Action.CREATE), facts()) == deny(R.WRONG_ROLE)


@pytest.mark.parametrize("actor", [prescriber(), pharmacist()], ids=["prescriber", "pharmacist"])
@pytest.mark.parametrize("action", [Action.CREATE, Action.UPDATE, Action.READ])
def test_CO_2_provider_registers_consent_with_proof_of_presence(
    actor: Actor, action: Action
) -> None:
    req = replace(request(prescriber(), record(ResourceKind.CONSENT), action), actor=actor)
    assert decide(replace(req, path=presence()), facts(consent=False)) == permit(R.PERMIT_PRESENCE)
    assert decide(req, facts(consent=False)) == deny(R.NO_PRESENCE)
    stale = presence(read_at=NOW - timedelta(days=1))
    assert decide(replace(req, path=stale), facts(consent=False)) == deny(R.NO_PRESENCE)


@pytest.mark.parametrize(
    ("named", "expected"),
    [
        (PRESCRIBER, permit(R.PERMIT_PRESENCE)),
        (AUTHOR, deny(R.NOT_OWN_DATA)),
        (None, deny(R.NOT_OWN_DATA)),
    ],
)
@pytest.mark.parametrize("action", [Action.CREATE, Action.UPDATE, Action.READ])
def test_CO_5_provider_registers_and_sees_only_its_own_relationship(
    named: str | None, expected: Decision, action: Action
) -> None:
    relation = record(ResourceKind.RELATIONSHIP, provider_nihdi=named)
    req = request(prescriber(), relation, action, path=presence())
    assert decide(req, facts(consent=False)) == expected


def test_CO_10_excluded_provider_cannot_register_consent_or_relationships() -> None:
    req = request(pharmacist(), record(ResourceKind.CONSENT), Action.CREATE, path=presence())
    assert decide(req, facts(consent=False, excluded=(PHARMACY,))) == deny(R.EXCLUDED)


def test_CO_2_consent_record_search_needs_presence() -> None:
    search = request(prescriber(), ResourceKind.RELATIONSHIP, Action.SEARCH)
    assert decide(search, facts(consent=False)) == deny(R.NO_PRESENCE)
    assert decide(replace(search, path=presence()), facts(consent=False)) == permit(
        R.PERMIT_PRESENCE
    )
