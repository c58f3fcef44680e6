"""The prescription's lifecycle operations (docs/architecture.md 4, 6; RX-7, RX-15; docs/pharmacy.md): for each,
its name, the state-machine step it asks for, its parameters, and the access decision's actions it
can stand for. Which role may take which action is ``consent.ACCESS_MATRIX`` alone (CO-12.1):
``action_for`` reads it, ``auth.step_of`` checks the scope that action needs and
``service.change_state`` decides, checks the state and writes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from consent import ACCESS_MATRIX, Action, ResourceKind, Role
from gateway.prescriptions.lifecycle import Step
from gateway.prescriptions.transitions import DELETED_BY_PATIENT

_RID: Final = frozenset({"rid"})


@dataclass(frozen=True)
class Operation:
    """How one lifecycle operation is called: its parameters, and the actions the access decision
    may judge it as (``$release``: a pharmacy's dispensing step, or the patient's reservation),
    and the status reason it writes when the caller gives none."""

    name: str
    step: Step
    names: frozenset[str] = _RID
    required: frozenset[str] = frozenset()
    actions: tuple[Action, ...] = (Action.DISPENSE,)
    status_reason: dict[str, Any] | None = None


# docs/architecture.md 4 ($revoke) and the executor's and patient's operations of RX-7 / RX-15.
OPERATIONS: Final[dict[Step, Operation]] = {
    op.step: op
    for op in (
        Operation(
            "$revoke",
            Step.REVOKE,
            frozenset({"reason"}),
            frozenset({"reason"}),
            (Action.REVOKE,),
        ),
        Operation("$take-in-process", Step.TAKE_IN_PROCESS),
        Operation(
            "$release",
            Step.RELEASE,
            actions=(Action.DISPENSE, Action.RESERVE),
        ),
        Operation(
            "$reserve",
            Step.RESERVE,
            frozenset({"pharmacy"}),
            frozenset({"pharmacy"}),
            (Action.RESERVE,),
        ),
        Operation("$archive", Step.ARCHIVE),
        # RX-7 "verwijderen": the patient's own step, not ``$revoke``, which is the author's with
        # his reason and also ends an in-process prescription; this one takes no parameter.
        Operation(
            "$delete-by-patient",
            Step.DELETE,
            frozenset(),
            actions=(Action.DELETE,),
            status_reason=DELETED_BY_PATIENT,
        ),
    )
}


OPERATION_NAMES: Final[dict[str, Operation]] = {op.name: op for op in OPERATIONS.values()}


def action_for(op: Operation, role: str) -> Action | None:
    """The action ``op`` is for a caller of ``role``: the first of its actions the access matrix
    lets that role take on a prescription; ``None``: none (``wrong-role``, CO-12.1)."""
    try:
        allowed = ACCESS_MATRIX[Role(role)].get(ResourceKind.PRESCRIPTION, frozenset())
    except (ValueError, KeyError):
        return None
    return next((action for action in op.actions if action in allowed), None)
