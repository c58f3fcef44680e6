"""FHIR's JSON rules, checked once when a request body is read (FHIR R4 json.html, datatypes.html).

orjson decides what JSON is (UTF-8, no BOM, no NaN or Infinity, numbers a double can hold, depth)
and gives the values the gateway works with. On top of JSON, FHIR asks that

- property names are element names (``given``, ``_given``, ``valueCodeableConcept``);
- no property is ``null``: a ``null`` is only the placeholder that aligns the two parallel arrays
  of a repeating primitive (``"given": ["Jan", null], "_given": [null, {"extension": [...]}]``),
  and never on both sides of one position;
- strings, objects and arrays are never empty (leave the element out instead);
- strings hold no character below U+0020 but tab, carriage return and line feed;
- each property appears once per object. orjson silently keeps the last of duplicate keys, so the
  body is decoded a second time by the standard library, whose ``object_pairs_hook`` sees every
  pair (about 30 us for a 3 KB prescription) and marks an object with a repeated key.

The checks walk that second tree; with element names remembered and strings searched for control
characters only when the raw body has an escape that can make one, the whole door costs 60 to
80 us of CPU for a 3 KB prescription (orjson alone: 6 to 10 us; timeit on these 2-core machines).

A breach is a 400 whose ``expression`` is the element's path (``MedicationRequest.note[0].text``);
neither the message nor the path ever repeats the value at fault.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

import orjson

from gateway.errors import BadRequest

# FHIR element names; a leading underscore holds a primitive's id and extensions.
_NAME: Final = re.compile(r"_?[A-Za-z][A-Za-z0-9_]{0,127}")
# datatypes.html#string: no character below U+0020 except U+0009, U+000A and U+000D.
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# JSON forbids raw control characters (orjson refuses them), so a string can only hold one through
# an escape: \u0000-\u001f, \b or \f. Without any in the raw body, no string needs searching.
_CONTROL_ESCAPE: Final = re.compile(rb"\\(?:u00[01]|[bf])")
# Names that passed ``_NAME`` before: the same few dozen recur in every body (bounded, never
# more than names that are valid anyway).
_KNOWN_NAMES: set[str] = set()
_KNOWN_NAMES_MAX: Final = 4096
# Deeper than any resource the gateway takes; keeps the checks clear of Python's recursion limit.
MAX_DEPTH: Final = 64


class _Duplicated(dict[str, Any]):
    """An object in which ``key`` appeared more than once (marked by the stdlib decoding)."""

    def __init__(self, pairs: list[tuple[str, Any]], key: str) -> None:
        super().__init__(pairs)
        self.key = key


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) == len(pairs):
        return found
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return _Duplicated(pairs, key)
        seen.add(key)
    raise AssertionError("unreachable: fewer keys than pairs means a repeated key")


_PAIRS_DECODER: Final = json.JSONDecoder(object_pairs_hook=_object)


class _Broken(Exception):
    """A breach found ``segments`` (innermost first) below the root."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.segments: list[str | int] = []


def loads(raw: bytes) -> dict[str, Any]:
    """The JSON object in ``raw`` if it keeps FHIR's JSON rules, else ``BadRequest`` (400)."""
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not valid JSON (at character {exc.pos})") from exc
    if not isinstance(parsed, dict):
        raise BadRequest("body must be a JSON object (a FHIR resource)")
    try:
        # orjson accepted it: valid UTF-8, so decoding cannot fail; only the depth can be too much.
        pairs = _PAIRS_DECODER.decode(raw.decode())
    except RecursionError as exc:
        raise BadRequest(f"body is nested deeper than {MAX_DEPTH} levels") from exc
    root = parsed.get("resourceType")
    root_name = root if isinstance(root, str) and _NAME.fullmatch(root) else "Resource"
    try:
        _Walk(controls=_CONTROL_ESCAPE.search(raw) is not None).object(pairs, 0)
    except _Broken as broken:
        raise BadRequest(
            f"{broken.message} (FHIR JSON rules)",
            expression=_path(root_name, broken.segments),
        ) from None
    return parsed


def _path(root: str, segments: list[str | int]) -> str:
    path = root
    for segment in reversed(segments):
        path += f"[{segment}]" if isinstance(segment, int) else f".{segment}"
    return path


def _is_name(key: str) -> bool:
    if key in _KNOWN_NAMES:
        return True
    if _NAME.fullmatch(key) is None:
        return False
    if len(_KNOWN_NAMES) < _KNOWN_NAMES_MAX:
        _KNOWN_NAMES.add(key)
    return True


class _Walk:
    """One pass over the decoded body; ``controls``: some string may hold a control character."""

    def __init__(self, *, controls: bool) -> None:
        self.controls = controls

    def object(self, value: dict[str, Any], depth: int) -> None:
        if depth > MAX_DEPTH:
            raise _Broken(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, _Duplicated):
            # The key is named only when it is an element name: a key is client text too.
            broken = _Broken("a property appears more than once in this object")
            if _is_name(value.key):
                broken.segments.append(value.key)
            raise broken
        for key, item in value.items():
            if not _is_name(key):
                raise _Broken("a property name is not a FHIR element name")
            try:
                if type(item) is list:
                    self.array(key, item, value, depth)
                else:
                    self.value(item, depth)
            except _Broken as broken:
                broken.segments.append(key)
                raise

    def array(self, key: str, value: list[Any], parent: dict[str, Any], depth: int) -> None:
        if not value:
            raise _Broken("an array is empty: leave the element out instead")
        partner: Any = None
        for index, item in enumerate(value):
            try:
                if item is None:
                    if partner is None:
                        partner = parent.get(key[1:] if key.startswith("_") else f"_{key}")
                    if not (
                        type(partner) is list
                        and len(partner) == len(value)
                        and partner[index] is not None
                    ):
                        raise _Broken(
                            "null is only allowed to align a repeating primitive with its "
                            "_element array, where the other array has an item"
                        )
                elif type(item) is list:
                    raise _Broken("an array holds an array, which FHIR never does")
                else:
                    self.value(item, depth)
            except _Broken as broken:
                broken.segments.append(index)
                raise

    def value(self, value: Any, depth: int) -> None:
        kind = type(value)
        if kind is str:
            if not value:
                raise _Broken("a string is empty: leave the element out instead")
            if self.controls and _CONTROL.search(value):
                raise _Broken(
                    "a string holds a control character (only tab, carriage return and line "
                    "feed are allowed)"
                )
        elif kind is dict or kind is _Duplicated:
            if not value:
                raise _Broken("an object is empty: leave the element out instead")
            self.object(value, depth + 1)
        elif value is None:
            raise _Broken("a property is null: leave the element out instead")
