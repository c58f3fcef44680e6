"""The prescription's lifecycle operations (docs/architecture.md 4, 6; RX-7, RX-15; docs/pharmacy.md): for each,
its name, the state-machine step it asks for, its parameters, and the access decision's action
for each role that may call it. ``auth.step_of`` checks role and scope; ``service.change_state``
decides, checks the state and writes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from consent import Action
from gateway.prescriptions.lifecycle import Step

_RID: Final = frozenset({"rid"})


@dataclass(frozen=True)
class Operation:
    """How one lifecycle operation is called: its parameters, and the action the access decision
    judges (``consent.Action``) for each role that may call it."""

    name: str
    step: Step
    names: frozenset[str] = _RID
    required: frozenset[str] = frozenset()
    actions: tuple[tuple[str, Action], ...] = (("pharmacist", Action.DISPENSE),)


# docs/architecture.md 4 ($revoke) and the executor's and patient's operations of RX-7 / RX-15.
OPERATIONS: Final[dict[Step, Operation]] = {
    op.step: op
    for op in (
        Operation(
            "$revoke",
            Step.REVOKE,
            frozenset({"reason"}),
            frozenset({"reason"}),
            (("prescriber", Action.REVOKE),),
        ),
        Operation("$take-in-process", Step.TAKE_IN_PROCESS),
        Operation(
            "$release",
            Step.RELEASE,
            actions=(("pharmacist", Action.DISPENSE), ("patient", Action.RESERVE)),
        ),
        Operation(
            "$reserve",
            Step.RESERVE,
            frozenset({"pharmacy"}),
            frozenset({"pharmacy"}),
            (("patient", Action.RESERVE),),
        ),
        Operation("$archive", Step.ARCHIVE),
    )
}


OPERATION_NAMES: Final[dict[str, Operation]] = {op.name: op for op in OPERATIONS.values()}
