"""``consent.decide`` for pharmacies: by RID and by patient (RX-7, RX-13, RX-17, RX-18)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from consent import (
    Action,
    ByPresence,
    ByRelationship,
    ByRid,
    Decision,
    PharmacyVisibility,
    PrescriberVisibility,
    PrescriptionState,
    Reason,
    Resource,
    ResourceKind,
    Visibility,
    decide,
)
from tests.consent.factories import (
    HIDING_FROM_PHARMACY,
    NOT_OPEN_STATES,
    NOW,
    OTHER_PHARMACY,
    PHARMACY,
    RID,
    deny,
    facts,
    permit,
    pharmacist,
    prescription,
    presence,
    request,
    visibility,
)

R = Reason
S = PrescriptionState


# --- pharmacies by RID (RX-13, RX-17.1) ---------------------------------------------------------


@pytest.mark.parametrize(
    "hidden",
    [*HIDING_FROM_PHARMACY, visibility(prescribers=PrescriberVisibility.CLOSED)],
)
def test_RX_13_rid_overrides_visibility(hidden: Visibility) -> None:
    req = request(pharmacist(), prescription(visibility=hidden), path=ByRid(RID))
    assert decide(req, facts()) == permit(R.PERMIT_RID)


@pytest.mark.parametrize("action", [Action.READ, Action.DISPENSE])
def test_RX_17_rid_needs_no_consent_or_relationship(action: Action) -> None:
    req = request(pharmacist(), prescription(), action, path=ByRid(RID))
    assert decide(req, facts(consent=False)) == permit(R.PERMIT_RID)


def test_RX_4_rid_compared_in_upper_case() -> None:
    req = request(pharmacist(), prescription(), path=ByRid(f" {RID.lower()} "))
    assert decide(req, facts()) == permit(R.PERMIT_RID)


def test_RX_7_rid_in_process_elsewhere_is_still_open() -> None:
    # Reading is allowed; who may deliver an in-process prescription is the lifecycle's (409).
    req = request(pharmacist(), prescription(state=S.IN_PROCESS), path=ByRid(RID))
    assert decide(req, facts()) == permit(R.PERMIT_RID)


@pytest.mark.parametrize("state", NOT_OPEN_STATES)
def test_RX_6_rid_shows_only_the_state_once_not_open(state: PrescriptionState) -> None:
    # docs/architecture.md 5: no content once it is no longer open; the service answers with the status only.
    req = request(pharmacist(), prescription(state=state), Action.READ, path=ByRid(RID))
    assert decide(req, facts()) == permit(R.PERMIT_RID_STATUS)


@pytest.mark.parametrize("state", NOT_OPEN_STATES)
def test_RX_7_dispense_by_rid_is_left_to_the_lifecycle(state: PrescriptionState) -> None:
    # Who may try is decided here; that the state forbids it is the lifecycle's 409.
    req = request(pharmacist(), prescription(state=state), Action.DISPENSE, path=ByRid(RID))
    assert decide(req, facts()) == permit(R.PERMIT_RID)


def test_CO_10_exclusion_denies_even_with_the_rid() -> None:
    req = request(pharmacist(), prescription(), path=ByRid(RID))
    assert decide(req, facts(excluded=(PHARMACY,))) == deny(R.EXCLUDED)


@pytest.mark.parametrize("held", ["BEP000000000", ""])
def test_rid_of_another_prescription_is_an_error(held: str) -> None:
    req = request(pharmacist(), prescription(), path=ByRid(held))
    assert decide(req, facts()) == deny(R.ERROR)


@pytest.mark.parametrize("state", [S.DELIVERED, S.ARCHIVED])
def test_RX_7_dispensing_pharmacy_reads_what_it_delivered(state: PrescriptionState) -> None:
    delivered = prescription(state=state, dispensed_by=PHARMACY)
    for path in (ByRid(RID), ByRelationship()):
        req = request(pharmacist(), delivered, path=path)
        assert decide(req, facts(consent=False, excluded=(PHARMACY,))) == permit(R.PERMIT_DISPENSER)


def test_RX_7_other_pharmacy_sees_only_the_state_of_a_delivered_prescription() -> None:
    delivered = prescription(state=S.DELIVERED, dispensed_by=OTHER_PHARMACY)
    decision = decide(request(pharmacist(), delivered, path=ByRid(RID)), facts())
    assert decision == permit(R.PERMIT_RID_STATUS)
    by_patient = request(pharmacist(), delivered, path=presence())
    assert decide(by_patient, facts()) == deny(R.NOT_OPEN)


def test_RX_7_dispensing_pharmacy_may_act_on_what_it_delivered() -> None:
    # Archiving (and the refused second dispense, 409) are the lifecycle's to settle.
    delivered = prescription(state=S.DELIVERED, dispensed_by=PHARMACY)
    req = request(pharmacist(), delivered, Action.DISPENSE, path=ByRid(RID))
    assert decide(req, facts()) == permit(R.PERMIT_DISPENSER)


# --- pharmacies by patient (RX-17.2, RX-18) -----------------------------------------------------


def test_RX_18_search_needs_presence_or_relationship() -> None:
    search = request(pharmacist(), ResourceKind.PRESCRIPTION, Action.SEARCH)
    assert decide(search, facts()) == deny(R.NO_RELATIONSHIP)
    assert decide(search, facts(related=(PHARMACY,))) == permit(R.PERMIT_RELATIONSHIP)
    assert decide(replace(search, path=presence()), facts()) == permit(R.PERMIT_PRESENCE)


@pytest.mark.parametrize(
    ("evidence", "present"),
    [
        (presence(), True),
        (presence(read_at=NOW - timedelta(hours=12)), True),
        (presence(read_at=NOW - timedelta(hours=12, seconds=1)), False),  # older than a session
        (presence(read_at=NOW + timedelta(minutes=5)), True),  # clock skew
        (presence(read_at=NOW + timedelta(minutes=6)), False),
        (presence(card_number="  "), False),
    ],
    ids=["fresh", "12h", "stale", "skew", "future", "no-card"],
)
def test_RX_18_proof_of_presence_is_a_recent_eid_read(evidence: ByPresence, present: bool) -> None:
    search = request(pharmacist(), ResourceKind.PRESCRIPTION, Action.SEARCH, path=evidence)
    expected = permit(R.PERMIT_PRESENCE) if present else deny(R.NO_RELATIONSHIP)
    assert decide(search, facts()) == expected


def test_RX_18_stale_presence_falls_back_on_the_relationship() -> None:
    stale = presence(read_at=NOW - timedelta(days=2))
    search = request(pharmacist(), ResourceKind.PRESCRIPTION, Action.SEARCH, path=stale)
    assert decide(search, facts(related=(PHARMACY,))) == permit(R.PERMIT_RELATIONSHIP)


# RX-18 [A]: the Recip-e sources name the eID (or the SSIN and a relationship) for the listing at
# the counter and no informed consent; that consent governs the hubs' exchange (CO-1..CO-4). The
# search and each record in it are decided alike (consent.search turns the search into SQL).
_AT_THE_COUNTER = [ResourceKind.PRESCRIPTION, prescription()]


@pytest.mark.parametrize("target", _AT_THE_COUNTER, ids=["search", "record-in-it"])
def test_rx18_a_pharmacy_lists_the_patient_at_its_counter_without_consent(
    target: Resource | ResourceKind,
) -> None:
    search = request(pharmacist(), target, Action.SEARCH)
    no_consent = facts(consent=False)
    assert decide(replace(search, path=presence()), no_consent) == permit(R.PERMIT_PRESENCE)
    related = facts(consent=False, related=(PHARMACY,))
    assert decide(search, related) == permit(R.PERMIT_RELATIONSHIP)
    assert decide(search, no_consent) == deny(R.NO_RELATIONSHIP)  # the SSIN alone (RX-17.2)


@pytest.mark.parametrize("target", _AT_THE_COUNTER, ids=["search", "record-in-it"])
@pytest.mark.parametrize("path", [presence(), ByRelationship()], ids=["eid", "relationship"])
def test_co10_an_exclusion_still_refuses_the_listing_at_the_counter(
    target: Resource | ResourceKind, path: ByPresence | ByRelationship
) -> None:
    search = request(pharmacist(), target, Action.SEARCH, path=path)
    for consent in (False, True):
        known = facts(consent=consent, related=(PHARMACY,), excluded=(PHARMACY,))
        assert decide(search, known) == deny(R.EXCLUDED)


@pytest.mark.parametrize("hidden", HIDING_FROM_PHARMACY)
def test_rx13_a_hidden_prescription_stays_out_of_the_listing_without_consent(
    hidden: Visibility,
) -> None:
    req = request(pharmacist(), prescription(visibility=hidden), Action.SEARCH, path=presence())
    assert decide(req, facts(consent=False)) == deny(R.HIDDEN_BY_PATIENT)


@pytest.mark.parametrize("action", [Action.READ, Action.DISPENSE])
def test_co12_2_without_the_rid_a_read_or_dispense_by_id_keeps_the_network_rules(
    action: Action,
) -> None:
    # Only the listing changed: a read by logical id or a dispense by reference alone is no RID
    # and no listing, so the patient's consent is still required (docs/access.md).
    req = request(pharmacist(), prescription(), action, path=presence())
    assert decide(req, facts(consent=False, related=(PHARMACY,))) == deny(R.NO_CONSENT)


@pytest.mark.parametrize(
    ("shown", "expected"),
    [
        (visibility(), permit(R.PERMIT_PRESENCE)),
        (
            visibility(pharmacies=PharmacyVisibility.ONE, pharmacy=PHARMACY),
            permit(R.PERMIT_PRESENCE),
        ),
        *[(hidden, deny(R.HIDDEN_BY_PATIENT)) for hidden in HIDING_FROM_PHARMACY],
        (visibility(prescribers=PrescriberVisibility.CLOSED), permit(R.PERMIT_PRESENCE)),
    ],
    ids=["all", "one-me", "none", "one-other", "one-nameless", "closed-to-prescribers"],
)
@pytest.mark.parametrize("action", [Action.SEARCH, Action.READ, Action.DISPENSE])
def test_RX_13_pharmacy_visibility_applies_by_patient(
    shown: Visibility, expected: Decision, action: Action
) -> None:
    req = request(pharmacist(), prescription(visibility=shown), action, path=presence())
    assert decide(req, facts()) == expected


@pytest.mark.parametrize("state", NOT_OPEN_STATES)
def test_RX_17_2_search_by_patient_shows_open_ones_only(state: PrescriptionState) -> None:
    req = request(pharmacist(), prescription(state=state), Action.SEARCH, path=presence())
    assert decide(req, facts()) == deny(R.NOT_OPEN)


def test_RX_18_search_by_rid_is_decided_per_record() -> None:
    search = request(pharmacist(), ResourceKind.PRESCRIPTION, Action.SEARCH, path=ByRid(RID))
    assert decide(search, facts()) == deny(R.ERROR)
