"""Reading an operation's ``Parameters`` body (FHIR R4 parameters.html) into named parts.

Operations take a few named parameters each; ``read`` checks the resource type, that the body is
a FHIR ``Parameters`` (every ``value[x]`` its datatype: a ``valueCodeableConcept`` is a
CodeableConcept, fhir.resources), that every name is one the operation knows, that none is
repeated, and that the required ones are there, and reports the element's path
(``Parameters.parameter.<name>``) when not. Typed readers take one value out.
"""

from __future__ import annotations

import re
from typing import Any, Final

from fhir.resources.R4B.parameters import Parameters

from fhir_profiles import systems
from fhir_profiles.structure import structure_issues
from gateway.errors import BadRequest, MalformedParameters

_ORG_NIHDI: Final = re.compile(r"^[0-9]{8,11}$")


def path(name: str) -> str:
    return f"Parameters.parameter.{name}"


def read(
    body: dict[str, Any],
    operation: str,
    names: frozenset[str],
    *,
    required: frozenset[str] = frozenset(),
) -> dict[str, dict[str, Any]]:
    """The parameters of ``body`` by name (each at most once)."""
    if body.get("resourceType") != "Parameters":
        raise BadRequest(f"{operation} takes a Parameters resource", expression="resourceType")
    malformed = structure_issues(Parameters, "Parameters", body)
    if malformed:
        raise MalformedParameters(malformed)
    parameters = body.get("parameter", [])
    if not isinstance(parameters, list):
        raise BadRequest(
            f"{operation}: parameter must be a list", expression="Parameters.parameter"
        )
    seen: dict[str, dict[str, Any]] = {}
    for parameter in parameters:
        name = parameter.get("name") if isinstance(parameter, dict) else None
        if name not in names:
            known = ", ".join(sorted(names)) or "none"
            raise BadRequest(
                f"{operation}: unknown parameter (known: {known})",
                expression="Parameters.parameter",
            )
        if name in seen:
            raise BadRequest(f"{name} may be given once", expression=path(name))
        seen[name] = parameter
    for name in sorted(required - seen.keys()):
        raise BadRequest(f"{operation} needs the parameter {name}", expression=path(name))
    return seen


def code(parameter: dict[str, Any], name: str) -> str:
    value = parameter.get("valueCode", parameter.get("valueString"))
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{name} needs a valueCode", expression=path(name))
    return value


def reason(parameter: dict[str, Any], name: str = "reason") -> dict[str, Any]:
    """A reason as a CodeableConcept: ``valueCodeableConcept`` as given, or ``valueString`` as
    its text. Non-empty, and short enough to be a reason rather than a document."""
    concept = parameter.get("valueCodeableConcept")
    if isinstance(concept, dict) and (concept.get("text") or concept.get("coding")):
        return concept
    text = parameter.get("valueString")
    if isinstance(text, str) and text.strip() and len(text) <= 500:
        return {"text": text.strip()}
    raise BadRequest(
        f"{name}: a valueString (at most 500 characters) or a valueCodeableConcept",
        expression=path(name),
    )


def organisation_nihdi(parameter: dict[str, Any], name: str) -> str:
    """A pharmacy's organisation NIHDI (ID-9): an Identifier, or its digits as a string."""
    identifier = parameter.get("valueIdentifier")
    if isinstance(identifier, dict):
        system = identifier.get("system")
        if system is not None and systems.normalise_system(str(system)) not in (
            systems.NIHDI_ORGANIZATION,
            systems.NIHDI,
        ):
            raise BadRequest(f"{name}: an NIHDI organisation identifier", expression=path(name))
        value = identifier.get("value")
    else:
        value = parameter.get("valueString")
    if not isinstance(value, str) or not _ORG_NIHDI.match(value):
        raise BadRequest(
            f"{name}: the organisation NIHDI number (8-11 digits)", expression=path(name)
        )
    return value
