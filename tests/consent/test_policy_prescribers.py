"""``consent.decide`` for prescribers: the author, other prescribers, consent, relationships, exclusions."""

from __future__ import annotations

from datetime import timedelta

import pytest

from consent import (
    AccessRequest,
    Action,
    ByRid,
    Decision,
    InformedConsent,
    PharmacyVisibility,
    PrescriberVisibility,
    PrescriptionState,
    Reason,
    ResourceKind,
    Visibility,
    decide,
)
from tests.consent.factories import (
    AUTHOR,
    HIDING_FROM_PHARMACY,
    NOT_OPEN_STATES,
    NOW,
    OTHER_PHARMACY,
    PHARMACY,
    PRESCRIBER,
    RID,
    author,
    deny,
    exclusion,
    facts,
    informed_consent,
    permit,
    pharmacist,
    prescriber,
    prescription,
    presence,
    record,
    relationship,
    request,
    visibility,
)

R = Reason
S = PrescriptionState


# --- the author (docs/architecture.md 5, RX-9) -------------------------------------------------------------


def test_RX_9_author_reads_own_without_consent_or_relationship() -> None:
    assert decide(request(author(), prescription()), facts(consent=False)) == permit(
        R.PERMIT_AUTHOR
    )


@pytest.mark.parametrize("state", list(S))
def test_architecture_5_author_always_reads_own(state: PrescriptionState) -> None:
    closed = prescription(
        state=state, visibility=visibility(prescribers=PrescriberVisibility.CLOSED)
    )
    assert decide(request(author(), closed), facts(consent=False)) == permit(R.PERMIT_AUTHOR)


@pytest.mark.parametrize("state", list(S))
def test_architecture_5_author_may_try_to_revoke_in_any_state(state: PrescriptionState) -> None:
    # Only the author; whether the state still allows it is the lifecycle's 409 (RX-7).
    req = request(author(), prescription(state=state), Action.REVOKE)
    assert decide(req, facts(consent=False)) == permit(R.PERMIT_AUTHOR)


@pytest.mark.parametrize("action", [Action.READ, Action.REVOKE, Action.SEARCH])
def test_CO_10_excluded_author_still_reads_and_revokes_own(action: Action) -> None:
    req = request(author(), prescription(), action)
    assert decide(req, facts(excluded=(AUTHOR,))) == permit(R.PERMIT_AUTHOR)


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (visibility(pharmacies=PharmacyVisibility.NONE), permit(R.PERMIT_AUTHOR)),
        (visibility(prescribers=PrescriberVisibility.CLOSED), permit(R.PERMIT_AUTHOR)),
        (visibility(), permit(R.PERMIT_AUTHOR)),
        (
            visibility(pharmacies=PharmacyVisibility.ONE, pharmacy=PHARMACY),
            deny(R.WRONG_ROLE),
        ),
    ],
)
def test_RX_13_author_sets_visibility_but_not_one_pharmacy(
    choice: Visibility, expected: Decision
) -> None:
    req = request(author(), prescription(), Action.SET_VISIBILITY, new_visibility=choice)
    assert decide(req, facts(consent=False)) == expected


def test_CO_10_excluded_author_cannot_set_visibility() -> None:
    req = request(author(), prescription(), Action.SET_VISIBILITY, new_visibility=visibility())
    assert decide(req, facts(excluded=(AUTHOR,))) == deny(R.EXCLUDED)


@pytest.mark.parametrize("action", [Action.REVOKE, Action.SET_VISIBILITY])
def test_architecture_4_only_the_author_revokes_or_sets_visibility(action: Action) -> None:
    req = request(prescriber(), prescription(), action, new_visibility=visibility())
    assert decide(req, facts(related=(PRESCRIBER,))) == deny(R.NOT_AUTHOR)


@pytest.mark.parametrize(
    ("requester", "expected"),
    [
        (AUTHOR, permit(R.PERMIT_AUTHOR)),
        (PRESCRIBER, deny(R.NOT_AUTHOR)),
        (None, deny(R.NOT_AUTHOR)),
    ],
)
def test_RX_5_prescriber_creates_in_own_name_only(
    requester: str | None, expected: Decision
) -> None:
    new = prescription(author_nihdi=requester, state=None, rid=None)
    # No consent and even an exclusion: prescribing is not reading the patient's data.
    assert decide(
        request(author(), new, Action.CREATE), facts(consent=False, excluded=(AUTHOR,))
    ) == (expected)


def test_ID_7_the_author_is_the_person_under_any_competence_code() -> None:
    # The first eight digits name the person; the competence code changes with his titles.
    for same_person in (prescriber(AUTHOR[:8] + "580"), prescriber(AUTHOR[:8])):
        assert decide(request(same_person, prescription()), facts(consent=False)) == permit(
            R.PERMIT_AUTHOR
        )
    other_person = prescriber(AUTHOR[:7] + "9004")
    assert decide(request(other_person, prescription()), facts(consent=False)) == deny(R.NO_CONSENT)


# --- other prescribers (RX-9, RX-14) ------------------------------------------------------------


def test_RX_9_other_prescriber_needs_consent_and_relationship() -> None:
    rx = prescription()
    assert decide(request(prescriber(), rx), facts(related=(PRESCRIBER,))) == permit(
        R.PERMIT_RELATIONSHIP
    )
    assert decide(request(prescriber(), rx), facts(consent=False, related=(PRESCRIBER,))) == deny(
        R.NO_CONSENT
    )
    assert decide(request(prescriber(), rx), facts()) == deny(R.NO_RELATIONSHIP)


@pytest.mark.parametrize(
    ("state", "expected"),
    [(S.OPEN, permit(R.PERMIT_RELATIONSHIP)), (S.IN_PROCESS, permit(R.PERMIT_RELATIONSHIP))]
    + [(state, deny(R.NOT_OPEN)) for state in NOT_OPEN_STATES],
)
def test_RX_9_other_prescriber_reads_open_ones_only(
    state: PrescriptionState, expected: Decision
) -> None:
    req = request(prescriber(), prescription(state=state))
    assert decide(req, facts(related=(PRESCRIBER,))) == expected


def test_RX_14_closed_hides_from_other_prescribers() -> None:
    closed = prescription(visibility=visibility(prescribers=PrescriberVisibility.CLOSED))
    assert decide(request(prescriber(), closed), facts(related=(PRESCRIBER,))) == deny(
        R.HIDDEN_BY_PATIENT
    )


@pytest.mark.parametrize("hidden", HIDING_FROM_PHARMACY)
def test_RX_13_pharmacy_flag_does_not_hide_from_prescribers(hidden: Visibility) -> None:
    rx = prescription(visibility=hidden)
    assert decide(request(prescriber(), rx), facts(related=(PRESCRIBER,))) == permit(
        R.PERMIT_RELATIONSHIP
    )


def test_RX_9_prescriber_needs_a_registered_relationship_not_just_presence() -> None:
    req = request(prescriber(), prescription(), path=presence())
    assert decide(req, facts()) == deny(R.NO_RELATIONSHIP)


def test_RX_13_rid_does_not_open_other_prescribers_a_prescription() -> None:
    # The RID override is the pharmacy's path (RX-17); a prescriber follows RX-9.
    req = request(prescriber(), prescription(), path=ByRid(RID))
    assert decide(req, facts()) == deny(R.NO_RELATIONSHIP)


# --- consent (CO-12.2) ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "req",
    [
        request(prescriber(), prescription()),
        request(prescriber(), ResourceKind.DISPENSE, Action.SEARCH),
        request(pharmacist(), prescription(), path=presence()),
        request(pharmacist(), prescription(), Action.DISPENSE, path=presence()),
        request(pharmacist(), record(ResourceKind.DISPENSE, author_nihdi=OTHER_PHARMACY)),
    ],
    # A pharmacy's search by patient needs no consent (RX-18): test_policy_pharmacies.py.
    ids=["prescriber-read", "dispense-search", "pharmacy-read", "pharmacy-dispense", "dispense"],
)
def test_CO_12_no_consent_denies(req: AccessRequest) -> None:
    # Even with a relationship (and the eID read): the network needs the patient's consent.
    assert decide(req, facts(consent=False, related=(PRESCRIBER, PHARMACY))) == deny(R.NO_CONSENT)


# --- consent and relationships in time (CO-1, CO-7) ---------------------------------------------


@pytest.mark.parametrize(
    ("consent", "expected"),
    [
        (informed_consent(), permit(R.PERMIT_RELATIONSHIP)),
        (informed_consent(active=False), deny(R.NO_CONSENT)),  # withdrawn (CO-3)
        (informed_consent(end=NOW - timedelta(seconds=1)), deny(R.NO_CONSENT)),
        (informed_consent(end=NOW), permit(R.PERMIT_RELATIONSHIP)),
        (informed_consent(start=NOW + timedelta(seconds=1)), deny(R.NO_CONSENT)),
    ],
    ids=["active", "withdrawn", "ended", "ends-now", "not-yet"],
)
def test_CO_1_consent_active_at_now(consent: InformedConsent, expected: Decision) -> None:
    known = facts(related=(PRESCRIBER,), consents=(consent,))
    assert decide(request(prescriber(), prescription()), known) == expected


def test_CO_4_any_active_consent_in_the_history_counts() -> None:
    history = (informed_consent(active=False), informed_consent())
    known = facts(related=(PRESCRIBER,), consents=history)
    assert decide(request(prescriber(), prescription()), known).permit


@pytest.mark.parametrize(
    ("overrides", "permitted"),
    [
        ({}, True),
        ({"start": NOW, "end": NOW}, True),  # CO-7: start <= t <= end, both inclusive
        ({"start": NOW + timedelta(seconds=1)}, False),
        ({"start": NOW - timedelta(days=40), "end": NOW - timedelta(seconds=1)}, False),
        ({"active": False}, False),  # ended by the patient (CO-5)
    ],
    ids=["active", "boundaries", "not-started", "expired", "ended"],
)
def test_CO_7_relationship_active_window(overrides: dict[str, object], permitted: bool) -> None:
    known = facts(relationships=(relationship(PRESCRIBER, **overrides),))
    expected = permit(R.PERMIT_RELATIONSHIP) if permitted else deny(R.NO_RELATIONSHIP)
    assert decide(request(prescriber(), prescription()), known) == expected


def test_CO_7_another_provider_s_relationship_does_not_count() -> None:
    known = facts(related=(AUTHOR, PHARMACY))
    assert decide(request(prescriber(), prescription()), known) == deny(R.NO_RELATIONSHIP)


def test_CO_7_a_pharmacy_relationship_covers_the_pharmacy() -> None:
    req = request(pharmacist(), ResourceKind.PRESCRIPTION, Action.SEARCH)
    assert decide(req, facts(related=(PHARMACY,))) == permit(R.PERMIT_RELATIONSHIP)
    assert decide(req, facts(related=(OTHER_PHARMACY,))) == deny(R.NO_RELATIONSHIP)


# --- exclusions (CO-10) -------------------------------------------------------------------------


def test_CO_10_exclusion_beats_relationship_and_consent() -> None:
    known = facts(related=(PRESCRIBER, PHARMACY), excluded=(PRESCRIBER, PHARMACY))
    assert decide(request(prescriber(), prescription()), known) == deny(R.EXCLUDED)
    search = request(pharmacist(), ResourceKind.PRESCRIPTION, Action.SEARCH, path=presence())
    assert decide(search, known) == deny(R.EXCLUDED)


def test_CO_10_lifted_exclusion_no_longer_denies() -> None:
    known = facts(related=(PRESCRIBER,), exclusions=(exclusion(PRESCRIBER, active=False),))
    assert decide(request(prescriber(), prescription()), known) == permit(R.PERMIT_RELATIONSHIP)


@pytest.mark.parametrize("named", [PRESCRIBER, PRESCRIBER[:8], PRESCRIBER[:8] + "003"])
def test_CO_10_exclusion_names_the_person_whatever_the_qualification(named: str) -> None:
    known = facts(related=(PRESCRIBER,), excluded=(named,))
    assert decide(request(prescriber(), prescription()), known) == deny(R.EXCLUDED)


def test_CO_10_exclusion_of_another_physician_does_not_deny() -> None:
    known = facts(related=(PRESCRIBER,), excluded=(AUTHOR,))
    assert decide(request(prescriber(), prescription()), known) == permit(R.PERMIT_RELATIONSHIP)


def test_CO_10_pharmacy_exclusion_matches_the_organisation_exactly() -> None:
    search = request(pharmacist(), ResourceKind.PRESCRIPTION, Action.SEARCH, path=presence())
    assert decide(search, facts(excluded=(PHARMACY,))) == deny(R.EXCLUDED)
    assert decide(search, facts(excluded=(PHARMACY[:7] + "9",))) == permit(R.PERMIT_PRESENCE)
