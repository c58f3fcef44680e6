"""The RX-7 state machine as a test table: every (state, event) pair, allowed or forbidden, and
who may cause the holder-only steps (docs/architecture.md 6)."""

from __future__ import annotations

import pytest

from gateway.prescriptions.lifecycle import (
    HELD,
    TRANSITIONS,
    State,
    transition,
)
from gateway.prescriptions.lifecycle import Step as Event
from gateway.prescriptions.lifecycle import (
    StepResult as Outcome,
)
from gateway.prescriptions.lifecycle import (
    TransitionRefused as Forbidden,
)

A, B = "06012345", "06054321"  # two pharmacies

# RX-7, written out again by hand: the expected table, not a copy of the code's.
ALLOWED = {
    (State.OPEN, Event.TAKE_IN_PROCESS): State.IN_PROCESS,
    (State.OPEN, Event.RESERVE): State.IN_PROCESS,
    (State.IN_PROCESS, Event.RELEASE): State.OPEN,
    (State.OPEN, Event.DISPENSE): State.DELIVERED,
    (State.IN_PROCESS, Event.DISPENSE): State.DELIVERED,
    (State.DELIVERED, Event.UNDO_DISPENSE): State.OPEN,
    (State.DELIVERED, Event.ARCHIVE): State.ARCHIVED,
    (State.OPEN, Event.REVOKE): State.REVOKED,
    (State.IN_PROCESS, Event.REVOKE): State.REVOKED,
    (State.OPEN, Event.DELETE): State.REVOKED,  # the patient's deletion: open ones only
}


def test_RX_7_table_is_exactly_the_allowed_transitions() -> None:
    assert TRANSITIONS == ALLOWED


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("event", list(Event))
def test_RX_7_every_pair(state: State, event: Event) -> None:
    holder = A if state in HELD else None
    expected = ALLOWED.get((state, event))
    if expected is None:
        with pytest.raises(Forbidden) as refused:
            transition(state, event, holder=holder, by=A)
        assert refused.value.message.startswith(f"cannot {event.value} this prescription")
    else:
        assert transition(state, event, holder=holder, by=A).state is expected


@pytest.mark.parametrize(
    "state", [State.DELIVERED, State.ARCHIVED, State.REVOKED, State.EXPIRED, State.ENTERED_IN_ERROR]
)
def test_RX_7_no_delivery_once_not_open(state: State) -> None:
    with pytest.raises(Forbidden):
        transition(state, Event.DISPENSE, holder=None, by=A)


@pytest.mark.parametrize("event", [Event.DISPENSE, Event.RELEASE])
def test_RX_7_in_process_only_the_holder(event: Event) -> None:
    with pytest.raises(Forbidden, match="in process at another pharmacy"):
        transition(State.IN_PROCESS, event, holder=A, by=B)
    assert transition(State.IN_PROCESS, event, holder=A, by=A).state in (
        State.DELIVERED,
        State.OPEN,
    )


@pytest.mark.parametrize("event", [Event.UNDO_DISPENSE, Event.ARCHIVE])
def test_RX_7_only_the_delivering_pharmacy_undoes_or_archives(event: Event) -> None:
    with pytest.raises(Forbidden, match="delivered by another pharmacy"):
        transition(State.DELIVERED, event, holder=A, by=B)


def test_RX_7_holders_follow_the_prescription() -> None:
    assert transition(State.OPEN, Event.TAKE_IN_PROCESS, holder=None, by=A) == Outcome(
        State.IN_PROCESS, A
    )
    assert transition(State.IN_PROCESS, Event.DISPENSE, holder=A, by=A) == Outcome(
        State.DELIVERED, A
    )
    assert transition(State.DELIVERED, Event.ARCHIVE, holder=A, by=A) == Outcome(State.ARCHIVED, A)
    assert transition(State.DELIVERED, Event.UNDO_DISPENSE, holder=A, by=A) == Outcome(
        State.OPEN, None
    )
    # RX-15: the patient (by=None) releases a reservation; a revoke clears the holder.
    assert transition(State.IN_PROCESS, Event.RELEASE, holder=B, by=None, reserved=True) == (
        Outcome(State.OPEN, None)
    )
    assert transition(State.IN_PROCESS, Event.REVOKE, holder=B, by=None) == Outcome(
        State.REVOKED, None
    )


def test_RX_15_the_patient_ends_his_reservation_not_a_pharmacys_taking_in_process() -> None:
    with pytest.raises(Forbidden, match="in process at a pharmacy, not reserved"):
        transition(State.IN_PROCESS, Event.RELEASE, holder=A, by=None)
    # The holding pharmacy may still release a reservation made at it.
    assert transition(State.IN_PROCESS, Event.RELEASE, holder=A, by=A, reserved=True).state is (
        State.OPEN
    )


@pytest.mark.parametrize(
    ("state", "why"),
    [
        (State.IN_PROCESS, "it is in process at a pharmacy"),
        (State.DELIVERED, "it has been delivered"),
        (State.REVOKED, "it has been revoked"),
        (State.EXPIRED, "its validity has ended"),
    ],
)
def test_RX_7_the_patient_deletes_open_prescriptions_only(state: State, why: str) -> None:
    with pytest.raises(Forbidden) as refused:
        transition(state, Event.DELETE, holder=A if state in HELD else None, by=None)
    assert refused.value.message == f"cannot delete this prescription: {why}"
    assert transition(State.OPEN, Event.DELETE, holder=None, by=None) == Outcome(
        State.REVOKED, None
    )
