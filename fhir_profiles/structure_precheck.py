"""A quick walk that recognises structurally valid resources without building the model (issue 18).

Building a ``fhir.resources`` model to check structure costs about 1.5 ms for a prescription,
mostly in the Python validators ``fhir_core`` runs for every nested element; the model is then
thrown away. ``surely_valid`` walks the plain dict against a table read once from the same model
classes (each element's JSON name, cardinality, complex type or primitive type, required and
choice (``[x]``) groups) and checks each primitive value with the model's own primitive type
(a pydantic ``TypeAdapter`` of the field's annotation: the same regexes and parsers).

It only ever answers "valid" or "not sure": anything it does not fully model (primitive
extensions ``_x``, ``fhir_comments``, nulls, empty arrays or objects, a
nested ``resourceType``, an element name it does not know, a class with validators of its own)
makes it give up, and ``structure_issues`` then asks the model, which alone writes the issues.
So the answers are the model's by construction; tests/fhir_profiles/test_structure_precheck.py
checks that whatever this accepts the model accepts too, on the guides' examples and on
generated variations of them.
"""

from __future__ import annotations

import importlib
import types
import typing
from dataclasses import dataclass
from typing import Any, Final

from fhir_core.constraints import FHIR_TYPES_MAPS
from fhir_core.types import FhirBase
from pydantic import BaseModel, TypeAdapter, ValidationError

# The model validators every fhir_core class has; their rules are the ones the walk applies
# (required elements, one type per choice, no null in a list). A class with any other
# validator is not modelled here.
_BASE_VALIDATORS: Final = frozenset(
    {"reject_null_complex_elements", "validate_after_model_construction"}
)


@dataclass(frozen=True)
class _Element:
    many: bool
    model: type[BaseModel] | None  # a complex type, else a primitive or any resource
    primitive: TypeAdapter[Any] | None
    choice: str | None  # the ``[x]`` group it belongs to
    resources: str | None = None  # any resource, by its resourceType (``contained``): its prefix


@dataclass(frozen=True)
class _Shape:
    resource_type: str
    elements: dict[str, _Element]  # by JSON name
    required: tuple[str, ...]  # present, whether by cardinality or by FHIR's min 1 on a primitive
    choices: dict[str, tuple[tuple[str, ...], bool]]  # group -> its element names, required


_shapes: dict[type[BaseModel], _Shape | None] = {}


def surely_valid(model: type[BaseModel], body: dict[str, Any]) -> bool:
    """True only if ``model.model_validate(body)`` would raise nothing (module docstring)."""
    shape = _shape(model)
    if shape is None:
        return False
    kind = body.get("resourceType")
    if kind is not None and kind != shape.resource_type:
        return False
    return _fits(shape, body, root=True)


def _fits(shape: _Shape, data: dict[str, Any], *, root: bool = False) -> bool:
    if not data:
        return False
    for name in shape.required:
        if name not in data:
            return False
    for names, required in shape.choices.values():
        present = sum(1 for name in names if name in data)
        if present > 1 or (required and present == 0):
            return False
    for name, value in data.items():
        element = shape.elements.get(name)
        if element is None:
            if root and name == "resourceType":
                continue
            return False
        if element.many:
            if type(value) is not list or not value:
                return False
            if not all(_value_fits(element, item) for item in value):
                return False
        elif not _value_fits(element, value):
            return False
    return True


def _value_fits(element: _Element, value: Any) -> bool:
    if value is None:
        return False
    if element.resources is not None:
        # ``contained``: the class named by the item's resourceType, as fhir_core picks it.
        kind = value.get("resourceType") if type(value) is dict else None
        model = resource_class(kind, element.resources) if isinstance(kind, str) else None
        shape = _shape(model) if model is not None else None
        return shape is not None and kind == shape.resource_type and _fits(shape, value, root=True)
    if element.model is not None:
        if type(value) is not dict:
            return False
        shape = _shape(element.model)
        return shape is not None and _fits(shape, value)
    assert element.primitive is not None
    if isinstance(value, dict | list):
        return False
    try:
        element.primitive.validate_python(value)
    except (ValidationError, ValueError, TypeError):
        return False
    return True


def resource_class(kind: str, prefix: str = "R4.") -> type[BaseModel] | None:
    """The model class of the resource type ``kind``, as fhir_core finds it, if there is one."""
    path = FHIR_TYPES_MAPS.get(prefix + kind + "Type")
    if not isinstance(path, str):
        return None
    module, _, name = path.rpartition(".")
    model = getattr(importlib.import_module(module), name, None)
    has_resource_base = getattr(model, "has_resource_base", None)
    if not isinstance(model, type) or not issubclass(model, BaseModel) or has_resource_base is None:
        return None
    return model if has_resource_base() else None


def _shape(model: type[BaseModel]) -> _Shape | None:
    if model not in _shapes:
        _shapes[model] = _read_shape(model)
    return _shapes[model]


def _read_shape(model: type[BaseModel]) -> _Shape | None:
    decorators = model.__pydantic_decorators__
    if (
        set(decorators.model_validators) - _BASE_VALIDATORS
        or decorators.field_validators
        or decorators.validators
        or decorators.root_validators
    ):
        return None
    elements: dict[str, _Element] = {}
    required: list[str] = []
    choices: dict[str, tuple[list[str], bool]] = {}
    for field_name, info in model.model_fields.items():
        name = info.alias or field_name
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if not extra.get("element_property"):
            continue  # fhir_comments and the ``_x`` extension siblings: never accepted here
        element = _element(info.annotation, extra)
        if element is None:
            continue  # contained resources and the like: their names stay unknown
        elements[name] = element
        if info.is_required() or extra.get("element_required"):
            required.append(name)
        if element.choice is not None:
            names, _ = choices.get(element.choice, ([], False))
            choices[element.choice] = ([*names, name], extra.get("one_of_many_required") is True)
    resource_type = str(getattr(model, "__resource_type__", model.__name__))
    return _Shape(
        resource_type,
        elements,
        tuple(required),
        {group: (tuple(names), needed) for group, (names, needed) in choices.items()},
    )


def _element(annotation: Any, extra: dict[str, Any]) -> _Element | None:
    inner, many = _strip_optional(annotation), False
    if typing.get_origin(inner) is list:
        (item,) = typing.get_args(inner)
        inner, many = _strip_optional(item), True
    choice = extra.get("one_of_many")
    group = choice if isinstance(choice, str) else None
    if isinstance(inner, type) and issubclass(inner, FhirBase):
        model = inner.get_model_klass()
        if getattr(model, "__resource_type__", None) == "Resource":
            # Polymorphic: any resource (contained, Bundle entries), chosen by its resourceType.
            return _Element(many, None, None, group, resources=str(inner._prefix))
        if getattr(model, "__resource_type__", None) == "DomainResource":
            return None  # never met; left to the model
        return _Element(many, model, None, group)
    if typing.get_origin(inner) in {list, dict, typing.Union, types.UnionType}:
        return None
    return _Element(many, None, TypeAdapter(inner), group)


def _strip_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in {typing.Union, types.UnionType}:
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation
