"""Structural validation with fhir.resources, its errors turned into :class:`Issue` values.

The pydantic model only checks FHIR R4 structure (cardinality, datatypes, unknown elements); the
Belgian rules run afterwards on the plain dict. A body the quick walk of ``structure_precheck``
recognises as valid is not given to the model (issue 18): the model is only built to find and
word the issues. Diagnostics never echo the offending input: it may
be an SSIN (see :class:`Issue`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from fhir_profiles.issues import Issue
from fhir_profiles.structure_precheck import resource_class, surely_valid

_MISSING_TYPES: Final = frozenset({"missing", "model_field_validation.missing"})
# fhir.resources reports choice elements (``medication[x]``) from a model validator, at the parent
# location, naming the candidate fields: "Expect any of field value from this list ['a', 'b']".
_CHOICE_LIST: Final = re.compile(r"from this list \[([^\]]*)\]")
_QUOTED_NAME: Final = re.compile(r"'(\w+)'")
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def fhir_path(resource_type: str, loc: Sequence[int | str]) -> str:
    """``('dosageInstruction', 0, 'text')`` -> ``MedicationRequest.dosageInstruction[0].text``.

    Segments that are not element names (pydantic's internal validator tags) are dropped.
    """
    path = resource_type
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _NAME.fullmatch(part):
            path += f".{part}"
    return path


def _message(error: ErrorDetails) -> str:
    message = error["msg"].removeprefix("Value error, ")
    shown = error.get("input")
    # Messages rarely quote the input, but a custom validator may: never let a value through.
    if isinstance(shown, str | int | float) and not isinstance(shown, bool):
        text = str(shown)
        if text and text in message:
            return "invalid value"
    return " ".join(message.split())


def _common_prefix(names: Sequence[str]) -> str:
    """``['medicationCodeableConcept', 'medicationReference']`` -> ``medication``."""
    if not names:
        return ""
    first, last = min(names), max(names)  # the extremes bound every shared prefix
    length = 0
    while length < min(len(first), len(last)) and first[length] == last[length]:
        length += 1
    return first[:length]


def _to_issue(resource_type: str, error: ErrorDetails) -> Issue:
    path = fhir_path(resource_type, error["loc"])
    if error["type"] in _MISSING_TYPES:
        # FHIR's ``required`` is the precise child of ``structure`` for a missing element.
        return Issue("required", path, "required element is missing")
    choice = _CHOICE_LIST.search(error["msg"])
    if choice is not None:
        names = _QUOTED_NAME.findall(choice.group(1))
        prefix = _common_prefix(names)
        if prefix:
            element = f"{path}.{prefix}[x]"
            if "got multiple" in error["msg"]:
                return Issue("structure", element, f"only one type of {prefix}[x] is allowed")
            return Issue("required", element, "required element is missing")
    return Issue("structure", path, _message(error))


def structure_issues(
    model: type[BaseModel], resource_type: str, body: dict[str, Any]
) -> list[Issue]:
    """Validate ``body`` with ``model``: one ``structure``/``required`` issue per pydantic error."""
    if surely_valid(model, body):
        return []
    try:
        model.model_validate(body)
    except ValidationError as exc:
        return [_to_issue(resource_type, error) for error in exc.errors(include_url=False)]
    except (KeyError, TypeError, AttributeError):
        # fhir_core fails outright (not a ValidationError) when a contained resource's
        # resourceType is missing, not a string or not a FHIR resource (KeyError, TypeError), and
        # when a primitive's ``_element`` extension is not an object (AttributeError).
        return [_unreadable(resource_type, body)]
    return []


def _unreadable(resource_type: str, body: dict[str, Any]) -> Issue:
    contained = body.get("contained")
    for index, item in enumerate(contained if isinstance(contained, list) else []):
        kind = item.get("resourceType") if isinstance(item, dict) else None
        if not isinstance(kind, str) or resource_class(kind) is None:
            return Issue(
                "structure",
                f"{resource_type}.contained[{index}].resourceType",
                "a contained resource needs the resourceType of a FHIR R4 resource",
            )
    return Issue("structure", resource_type, "the resource's structure could not be read")
