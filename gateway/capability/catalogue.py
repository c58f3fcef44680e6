"""The families' descriptions and the operations the routes serve, each with its one canonical URL.

An operation is offered when a route serves it (``served``); what it does and its parameters come
from the family's description (``gateway.<family>.capability``) or, for an operation every family
shares (``$validate``), from the module that serves it. Its OperationDefinition has the id
``[type]-[code]`` and the canonical URL ``[fhir base]/OperationDefinition/[type]-[code]``: the
same spelling in the CapabilityStatement, in the definition's ``url`` and in its read
(FHIR R4 operationdefinition.html, capabilitystatement.html ``operation.definition``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from starlette.routing import BaseRoute

from gateway import validation
from gateway.audit_events.capability import DESCRIPTION as AUDIT_EVENT
from gateway.capability.served import Level, Served, served
from gateway.claims.capability import CLAIM_DESCRIPTION, CLAIM_RESPONSE_DESCRIPTION
from gateway.communications.capability import DESCRIPTION as COMMUNICATION
from gateway.consents.capability import DESCRIPTION as CONSENT
from gateway.dispenses.capability import DESCRIPTION as MEDICATION_DISPENSE
from gateway.fhir.conformance import OperationSpec, SearchParam, TypeDescription
from gateway.prescriptions.capability import DESCRIPTION as MEDICATION_REQUEST

OPERATION_DEFINITION: Final = "OperationDefinition"
PUBLISHER: Final = "eHealth exchange and e-prescription gateway"
STARTED: Final = datetime.now(UTC).isoformat(timespec="seconds")  # the definitions' date

# This server's own definitions, readable without a token like metadata (docs/capability.md).
OPERATION_DEFINITIONS: Final = TypeDescription(
    type=OPERATION_DEFINITION,
    documentation="The definitions of this server's operations, one per operation and resource "
    "type, each at its canonical URL [base]/OperationDefinition/[type]-[code]. Public, like "
    "metadata: no token needed.",
    search_names=("url",),
    search_params=(
        SearchParam(
            "url",
            "uri",
            "the canonical URL a CapabilityStatement operation.definition names",
            "http://hl7.org/fhir/SearchParameter/conformance-url",
        ),
    ),
    common_search=False,  # a handful of definitions: one page, no paging parameters
)

DESCRIPTIONS: Final[dict[str, TypeDescription]] = {
    d.type: d
    for d in (
        MEDICATION_REQUEST,
        MEDICATION_DISPENSE,
        COMMUNICATION,
        CONSENT,
        AUDIT_EVENT,
        CLAIM_DESCRIPTION,
        CLAIM_RESPONSE_DESCRIPTION,
        OPERATION_DEFINITIONS,
    )
}
# Operations a module above the families serves for several types: code -> spec for a type.
_SHARED: Final[dict[str, Callable[[str], OperationSpec]]] = {
    validation.CODE: validation.operation_spec
}


@dataclass(frozen=True)
class Offered:
    """One operation a route serves on one resource type."""

    resource_type: str
    code: str
    levels: frozenset[Level]
    spec: OperationSpec

    @property
    def id(self) -> str:
        return f"{self.resource_type}-{self.code}"

    def url(self, base: str) -> str:
        return f"{base}/{OPERATION_DEFINITION}/{self.id}"


def _spec(resource_type: str, code: str) -> OperationSpec:
    described = DESCRIPTIONS.get(resource_type)
    spec = described.operation(code) if described is not None else None
    if spec is None and code in _SHARED:
        spec = _SHARED[code](resource_type)
    return spec or OperationSpec(code, "", ())


def offered(resource_type: str, entry: Served) -> list[Offered]:
    """The operations ``entry``'s routes serve on ``resource_type``, in the description's order."""
    levels: dict[str, set[Level]] = {code: set(at) for code, at in entry.operations.items()}
    described = DESCRIPTIONS.get(resource_type)
    if entry.catch_all and described is not None:
        for code in described.catch_all_operations:
            levels.setdefault(code, set()).add("instance")
    order = [op.code for op in described.operations] if described is not None else []
    codes = sorted(levels, key=lambda code: order.index(code) if code in order else len(order))
    return [
        Offered(resource_type, code, frozenset(levels[code]), _spec(resource_type, code))
        for code in codes
    ]


def served_types(routes: Sequence[BaseRoute]) -> list[tuple[str, Served]]:
    """Every resource type a route serves, the described ones first in their order."""
    found = {t: s for t, s in served(routes).items() if s.interactions or s.operations}
    known = [t for t in DESCRIPTIONS if t in found]
    return [(t, found[t]) for t in [*known, *(t for t in found if t not in DESCRIPTIONS)]]


def all_offered(routes: Sequence[BaseRoute]) -> list[Offered]:
    return [op for t, entry in served_types(routes) for op in offered(t, entry)]
