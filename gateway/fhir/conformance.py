"""How a resource family describes itself to ``GET /fhir/metadata`` and the OperationDefinitions.

A family states only what its routes cannot say: its profile, the documentation of each search
parameter its search code accepts (``search_names``: the very table that code checks against) and
of each operation (its parameters). Which interactions and operations exist is read from the
routes actually registered (``gateway.capability``), so nothing here can claim a route that is not
there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

# FHIR R4 search.html: the definitions of the standard search parameters.
FHIR_SEARCH_PARAMETER: Final = "http://hl7.org/fhir/SearchParameter/"


@dataclass(frozen=True)
class SearchParam:
    """One CapabilityStatement.rest.resource.searchParam (FHIR R4 capabilitystatement.html)."""

    name: str
    type: str  # SearchParamType: number | date | string | token | reference | uri | special ...
    documentation: str
    definition: str | None = None

    @classmethod
    def of(cls, entry: dict[str, str]) -> SearchParam:
        """From the plain dict form ``gateway.fhir.search`` publishes for shared parameters."""
        return cls(entry["name"], entry["type"], entry["documentation"], entry.get("definition"))

    def entry(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.definition:
            out["definition"] = self.definition
        out["type"] = self.type
        out["documentation"] = self.documentation
        return out


@dataclass(frozen=True)
class OperationParam:
    """One OperationDefinition.parameter (FHIR R4 operationdefinition.html)."""

    name: str
    use: Literal["in", "out"]
    type: str  # a FHIRAllTypes code: string, code, Identifier, CodeableConcept, Resource...
    documentation: str
    min: int = 0
    max: str = "1"

    def entry(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "use": self.use,
            "min": self.min,
            "max": self.max,
            "documentation": self.documentation,
            "type": self.type,
        }


@dataclass(frozen=True)
class OperationSpec:
    """What a client needs to call one operation: what it does and its parameters."""

    code: str  # without the "$"
    documentation: str
    parameters: tuple[OperationParam, ...]
    affects_state: bool = True
    base: str | None = None  # the OperationDefinition this one constrains (a standard operation)


@dataclass(frozen=True)
class TypeDescription:
    """What one resource type's routes cannot say about themselves."""

    type: str
    documentation: str
    profile: str | None = None
    # The names the family's search checks (``search.check_known``), modifiers included
    # (``patient:identifier``); each base name must have its documentation in ``search_params``.
    search_names: tuple[str, ...] = ()
    search_params: tuple[SearchParam, ...] = ()
    # Operations by code; an operation is listed only when a route serves it.
    operations: tuple[OperationSpec, ...] = ()
    # The codes a catch-all ``POST /{id}/{operation}`` route serves (its own operations table).
    catch_all_operations: tuple[str, ...] = ()
    # Whether the shared parameters (``search.COMMON``: ``_count``...) apply to its search.
    common_search: bool = True

    def search_param(self, name: str) -> SearchParam | None:
        return next((p for p in self.search_params if p.name == name), None)

    def operation(self, code: str) -> OperationSpec | None:
        return next((o for o in self.operations if o.code == code), None)


def reason_param(documentation: str, *, required: bool = False) -> OperationParam:
    """The ``reason`` of a step (``gateway.fhir.parameters.reason``): a valueString or a
    valueCodeableConcept; declared as string, the form most clients send."""
    return OperationParam(
        "reason",
        "in",
        "string",
        documentation + " (a valueString of at most 500 characters, or a valueCodeableConcept)",
        min=1 if required else 0,
    )


def returned(resource_type: str, documentation: str) -> OperationParam:
    """An operation's answer: FHIR R4 operations.html, a single resource out-parameter ``return``
    is sent as that resource, not inside a Parameters."""
    return OperationParam("return", "out", resource_type, documentation, min=1)
