"""The prescription lifecycle of RX-6 / RX-7 as one table (docs/architecture.md 6).

``TRANSITIONS`` is the whole state machine: (state, event) -> new state. Anything absent is a
forbidden transition, which the API answers with 409 and the message of ``Forbidden``. Who may ask
for an event at all is the access decision's business (``consent.decide``); this module says
whether the prescription's state allows it, including which pharmacy holds it:

- ``IN_PROCESS`` is held by one pharmacy (it took the prescription in process, RX-7
  putRidsInProcess, or the patient reserved it there, RX-15): other pharmacies cannot deliver it
  until it is released;
- ``DELIVERED`` and ``ARCHIVED`` are held by the pharmacy that delivered: only it may undo the
  delivery (RX-7 markAsUnDelivered) or archive it;
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


class Event(StrEnum):
    TAKE_IN_PROCESS = "take-in-process"  # RX-7 putRidsInProcess (a pharmacy)
    RESERVE = "reserve"  # RX-15 createReservation (the patient, at one pharmacy)
    RELEASE = (
        "release"  # RX-7 IN_PROCESS -> NOT_DELIVERED (the holder, or the patient's own reservation)
    )
    DISPENSE = "dispense"  # RX-7 markAsDelivered
    UNDO_DISPENSE = "undo-dispense"  # RX-7 markAsUnDelivered
    ARCHIVE = "archive"  # RX-7 markAsArchived
    REVOKE = "revoke"  # RX-7 revokePrescription (the author, with a reason)


S, E = State, Event

# RX-7, one line per allowed transition.
TRANSITIONS: Final[dict[tuple[State, Event], State]] = {
    (S.OPEN, E.TAKE_IN_PROCESS): S.IN_PROCESS,
    (S.OPEN, E.RESERVE): S.IN_PROCESS,
    (S.IN_PROCESS, E.RELEASE): S.OPEN,
    (S.OPEN, E.DISPENSE): S.DELIVERED,
    (S.IN_PROCESS, E.DISPENSE): S.DELIVERED,  # by the holder only (HOLDER_ONLY)
    (S.DELIVERED, E.UNDO_DISPENSE): S.OPEN,  # same pharmacy, before archiving
    (S.DELIVERED, E.ARCHIVE): S.ARCHIVED,
    (S.OPEN, E.REVOKE): S.REVOKED,
    (S.IN_PROCESS, E.REVOKE): S.REVOKED,
}

# Events that, from these states, only the holding pharmacy may cause (RX-7, RX-15).
HOLDER_ONLY: Final[frozenset[tuple[State, Event]]] = frozenset(
    {
        (S.IN_PROCESS, E.RELEASE),
        (S.IN_PROCESS, E.DISPENSE),
        (S.DELIVERED, E.UNDO_DISPENSE),
        (S.DELIVERED, E.ARCHIVE),
    }
)

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


class Forbidden(Exception):
    """A transition RX-7 does not allow from the current state (HTTP 409)."""

    def __init__(self, event: Event, state: State, message: str) -> None:
        super().__init__(message)
        self.event, self.state, self.message = event, state, message


@dataclass(frozen=True)
class Outcome:
    state: State
    holder: str | None  # organisation NIHDI of the pharmacy holding it afterwards


def transition(state: State, event: Event, *, holder: str | None, by: str | None) -> Outcome:
    """The state after ``event`` caused by pharmacy ``by`` (``None``: the author or the patient),
    or ``Forbidden``. ``holder`` is the pharmacy that holds the prescription now, if any."""
    new = TRANSITIONS.get((state, event))
    if new is None:
        raise Forbidden(event, state, f"cannot {event.value} this prescription: {_WHY[state]}")
    if (state, event) in HOLDER_ONLY and by is not None and by != holder:
        where = (
            "in process at another pharmacy"
            if state is S.IN_PROCESS
            else "delivered by another pharmacy"
        )
        raise Forbidden(event, state, f"cannot {event.value} this prescription: it is {where}")
    if new in HELD:
        return Outcome(new, holder if state in HELD else by)
    return Outcome(new, None)
