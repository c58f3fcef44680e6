"""OperationDefinitions (FHIR R4 operationdefinition.html) of the operations the routes serve."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute

from gateway import __version__
from gateway.capability.catalogue import PUBLISHER, STARTED, Offered, all_offered


def _name(op: Offered) -> str:
    """A name for code generators (R4 opd-0: ``[A-Z]([A-Za-z0-9_]){0,254}``):
    ``MedicationRequestTakeInProcess``."""
    words = op.code.replace("_", "-").split("-")
    return op.resource_type + "".join(word[:1].upper() + word[1:] for word in words)


def definition(op: Offered, base: str) -> dict[str, Any]:
    spec = op.spec
    out: dict[str, Any] = {
        "resourceType": "OperationDefinition",
        "id": op.id,
        "url": op.url(base),
        "version": __version__,
        "name": _name(op),
        "title": f"${op.code} on {op.resource_type}",
        "status": "active",
        "kind": "operation",
        "date": STARTED,
        "publisher": PUBLISHER,
    }
    if spec.documentation:
        out["description"] = spec.documentation
    out["affectsState"] = spec.affects_state
    out["code"] = op.code
    if spec.base:
        out["base"] = spec.base
    out["resource"] = [op.resource_type]
    out["system"] = False
    out["type"] = "type" in op.levels
    out["instance"] = "instance" in op.levels
    if spec.parameters:
        out["parameter"] = [param.entry() for param in spec.parameters]
    return out


def definitions(routes: Sequence[BaseRoute], base: str) -> dict[str, dict[str, Any]]:
    """Id -> OperationDefinition, for every operation a route serves."""
    return {op.id: definition(op, base) for op in all_offered(routes)}
