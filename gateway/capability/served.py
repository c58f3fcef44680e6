"""What the registered ``/fhir`` routes serve, per resource type: the one source of the
CapabilityStatement's interactions and operations, so it cannot list a route that is not there.

Each route's path and method name a FHIR R4 interaction (http.html, operations.html):

- ``GET [type]`` search-type, ``POST [type]/_search`` search-type, ``POST [type]`` create,
  ``PUT [type]`` a conditional update, ``DELETE [type]`` a conditional delete,
  ``GET [type]/_history`` history-type;
- ``GET [type]/[id]`` read, ``PUT`` update, ``PATCH`` patch, ``DELETE`` delete;
- ``GET [type]/[id]/_history`` history-instance, ``GET [type]/[id]/_history/[vid]`` vread;
- ``POST [type]/$op`` and ``POST [type]/[id]/$op`` an operation at type or instance level;
  ``POST [type]/[id]/{operation}`` every operation of the family's own table.

The headers a route reads say more: a create that reads ``If-None-Exist`` is a conditional create,
an update that reads ``If-Match`` a version-aware update. ``HEAD`` and ``OPTIONS`` name no
interaction. A path of any other shape is not claimed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute

FHIR_PREFIX: Final = "/fhir/"
Level = Literal["type", "instance"]
# FHIR R4 valueset-type-restful-interaction, in the specification's order.
INTERACTION_ORDER: Final = (
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
)
_TYPE_LEVEL: Final = {"GET": "search-type", "POST": "create"}
_INSTANCE_LEVEL: Final = {"GET": "read", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@dataclass
class Served:
    """What the routes of one resource type serve."""

    interactions: set[str] = field(default_factory=set)
    operations: dict[str, set[Level]] = field(default_factory=dict)  # code -> levels
    catch_all: bool = False  # POST [type]/[id]/{operation}: the family's operations table
    conditional_create: bool = False
    conditional_update: bool = False
    conditional_delete: bool = False
    versioned_update: bool = False

    def ordered_interactions(self) -> list[str]:
        return [code for code in INTERACTION_ORDER if code in self.interactions]


def _headers(dependant: Dependant) -> frozenset[str]:
    """The request headers a route or any of its dependencies declares (lower case)."""
    own = frozenset(param.alias.lower() for param in dependant.header_params)
    return own.union(*(_headers(sub) for sub in dependant.dependencies))


def _variable(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


def _operation(segment: str) -> str | None:
    return segment[1:] if segment.startswith("$") and len(segment) > 1 else None


def _classify(served: Served, method: str, rest: list[str], headers: frozenset[str]) -> None:
    """Record what ``method`` on ``[type]/<rest>`` serves (``rest``: the segments after the type)."""
    if not rest:
        if method in _TYPE_LEVEL:
            served.interactions.add(_TYPE_LEVEL[method])
            served.conditional_create |= method == "POST" and "if-none-exist" in headers
        served.conditional_update |= method == "PUT"
        served.conditional_delete |= method == "DELETE"
        return
    first = rest[0]
    if len(rest) == 1 and first == "_search" and method == "POST":
        served.interactions.add("search-type")
    elif len(rest) == 1 and first == "_history" and method == "GET":
        served.interactions.add("history-type")
    elif len(rest) == 1 and (code := _operation(first)) is not None:
        served.operations.setdefault(code, set()).add("type")
    elif len(rest) == 1 and _variable(first) and method in _INSTANCE_LEVEL:
        served.interactions.add(_INSTANCE_LEVEL[method])
        served.versioned_update |= method == "PUT" and "if-match" in headers
    elif len(rest) == 2 and _variable(first) and rest[1] == "_history" and method == "GET":
        served.interactions.add("history-instance")
    elif len(rest) == 2 and _variable(first) and (code := _operation(rest[1])) is not None:
        served.operations.setdefault(code, set()).add("instance")
    elif len(rest) == 2 and _variable(first) and _variable(rest[1]) and method == "POST":
        served.catch_all = True
    elif (
        len(rest) == 3
        and _variable(first)
        and rest[1] == "_history"
        and _variable(rest[2])
        and method == "GET"
    ):
        served.interactions.add("vread")


def served(routes: Sequence[BaseRoute]) -> dict[str, Served]:
    """Resource type -> what its registered routes serve (types in registration order).

    ``routes`` is the app's (``app.routes``): included routers are walked to the routes they
    hold, each with the path and methods it is served at."""
    found: dict[str, Served] = {}
    for context in iter_route_contexts(routes):
        route, path = context.original_route, context.path
        if not isinstance(route, APIRoute) or path is None or not path.startswith(FHIR_PREFIX):
            continue
        resource_type, *rest = path.removeprefix(FHIR_PREFIX).split("/")
        if not resource_type[:1].isupper():  # metadata, or a system-level path: no type
            continue
        headers = _headers(route.dependant)
        entry = found.setdefault(resource_type, Served())
        for method in sorted((context.methods or set()) - {"HEAD", "OPTIONS"}):
            _classify(entry, method, rest, headers)
    return found


def system_operations(routes: Sequence[BaseRoute]) -> list[str]:
    """The codes of the system-level operations the routes serve (``POST /fhir/$op``), sorted."""
    found = set()
    for context in iter_route_contexts(routes):
        route, path = context.original_route, context.path
        if isinstance(route, APIRoute) and path is not None and path.startswith(FHIR_PREFIX):
            code = _operation(path.removeprefix(FHIR_PREFIX))
            if code is not None and "POST" in (context.methods or set()):
                found.add(code)
    return sorted(found)
