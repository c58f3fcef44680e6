"""The prescription lifecycle of RX-6 / RX-7 as one table (docs/architecture.md 6).

``TRANSITIONS`` is the whole state machine: (state, step) -> new state. Anything absent is a
forbidden transition, which the API answers with 409 and the message of ``TransitionRefused``. Who may ask
for a step at all is the access decision's business (``consent.decide``); this module says
whether the prescription's state allows it, including which pharmacy holds it:

- ``IN_PROCESS`` is held by one pharmacy (it took the prescription in process, RX-7
  putRidsInProcess, or the patient reserved it there, RX-15): other pharmacies cannot deliver it
  until it is released;
- ``DELIVERED`` and ``ARCHIVED`` are held by the pharmacy that delivered: only it may undo the
  delivery (RX-7 markAsUnDelivered) or archive it;
- a patient's reservation (RX-15) is ``IN_PROCESS`` too; the patient ends only his own
  reservation, never a pharmacy's own taking in process (``RESERVATION_ONLY``);
- ``EXPIRED`` is never stored: an open prescription past the end of its validity is expired at
  read time (RX-7 "computed lazily"), so no background job has to run before a dispense is refused.

Pure: no I/O, no clock of its own; ``gateway.prescriptions.transitions`` applies the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from consent import PrescriptionState

State = PrescriptionState


class Step(StrEnum):
    """A lifecycle step someone asks for (RX-7); the audit log's events are ``access.guard.Event``."""

    TAKE_IN_PROCESS = "take-in-process"  # RX-7 putRidsInProcess (a pharmacy)
    RESERVE = "reserve"  # RX-15 createReservation (the patient, at one pharmacy)
    RELEASE = (
        "release"  # RX-7 IN_PROCESS -> NOT_DELIVERED (the holder, or the patient's own reservation)
    )
    DISPENSE = "dispense"  # RX-7 markAsDelivered
    UNDO_DISPENSE = "undo-dispense"  # RX-7 markAsUnDelivered
    ARCHIVE = "archive"  # RX-7 markAsArchived
    REVOKE = "revoke"  # RX-7 revokePrescription (the author, with a reason)
    DELETE = "delete"  # RX-7 "verwijderen": the patient deletes an open prescription


S = State

# RX-7, one line per allowed transition.
TRANSITIONS: Final[dict[tuple[State, Step], State]] = {
    (S.OPEN, Step.TAKE_IN_PROCESS): S.IN_PROCESS,
    (S.OPEN, Step.RESERVE): S.IN_PROCESS,
    (S.IN_PROCESS, Step.RELEASE): S.OPEN,
    (S.OPEN, Step.DISPENSE): S.DELIVERED,
    (S.IN_PROCESS, Step.DISPENSE): S.DELIVERED,  # by the holder only (HOLDER_ONLY)
    (S.DELIVERED, Step.UNDO_DISPENSE): S.OPEN,  # same pharmacy, before archiving
    (S.DELIVERED, Step.ARCHIVE): S.ARCHIVED,
    (S.OPEN, Step.REVOKE): S.REVOKED,
    (S.IN_PROCESS, Step.REVOKE): S.REVOKED,
    (S.OPEN, Step.DELETE): S.REVOKED,  # open only: not once a pharmacy holds it
}

# Steps that, from these states, only the holding pharmacy may cause (RX-7, RX-15).
HOLDER_ONLY: Final[frozenset[tuple[State, Step]]] = frozenset(
    {
        (S.IN_PROCESS, Step.RELEASE),
        (S.IN_PROCESS, Step.DISPENSE),
        (S.DELIVERED, Step.UNDO_DISPENSE),
        (S.DELIVERED, Step.ARCHIVE),
    }
)

# Steps that, from these states, the patient (``by`` None) may cause only on his own reservation
# (RX-7: "in process -> open: the holding pharmacy releases it, or the reservation ends").
RESERVATION_ONLY: Final[frozenset[tuple[State, Step]]] = frozenset({(S.IN_PROCESS, Step.RELEASE)})

# Which states keep a holder: the pharmacy in process, or the one that delivered.
HELD: Final[frozenset[State]] = frozenset({S.IN_PROCESS, S.DELIVERED, S.ARCHIVED})

_WHY: Final[dict[State, str]] = {
    S.OPEN: "it is open",
    S.IN_PROCESS: "it is in process at a pharmacy",
    S.DELIVERED: "it has been delivered",
    S.ARCHIVED: "it has been delivered and archived",
    S.REVOKED: "it has been revoked",
    S.EXPIRED: "its validity has ended",
    S.ENTERED_IN_ERROR: "it was entered in error",
}


class TransitionRefused(Exception):
    """A transition RX-7 does not allow from the current state (HTTP 409)."""

    def __init__(self, step: Step, state: State, message: str) -> None:
        super().__init__(message)
        self.step, self.state, self.message = step, state, message


@dataclass(frozen=True)
class StepResult:
    state: State
    holder: str | None  # organisation NIHDI of the pharmacy holding it afterwards


def transition(
    state: State, step: Step, *, holder: str | None, by: str | None, reserved: bool = False
) -> StepResult:
    """The state after ``step`` caused by pharmacy ``by`` (``None``: the author or the patient),
    or ``TransitionRefused``. ``holder`` is the pharmacy that holds the prescription now, if any;
    ``reserved``: it holds it because the patient reserved it there (RX-15)."""
    new = TRANSITIONS.get((state, step))
    if new is None:
        raise TransitionRefused(
            step, state, f"cannot {step.value} this prescription: {_WHY[state]}"
        )
    if (state, step) in HOLDER_ONLY and by is not None and by != holder:
        where = (
            "in process at another pharmacy"
            if state is S.IN_PROCESS
            else "delivered by another pharmacy"
        )
        raise TransitionRefused(
            step, state, f"cannot {step.value} this prescription: it is {where}"
        )
    if (state, step) in RESERVATION_ONLY and by is None and not reserved:
        raise TransitionRefused(
            step, state, f"cannot {step.value} this prescription: {_WHY[state]}, not reserved"
        )
    if new in HELD:
        return StepResult(new, holder if state in HELD else by)
    return StepResult(new, None)
